"""Datasets as uint8 tensors in memory: stratified subsets and a validation split.

Each dataset is read from a torchvision layout under the data root (downloaded there when
`download` is on) or from the offline `.npz` subsets (`NPZ_ARRAYS`; README, "Data root").
Images stay uint8 NCHW until `augment.py` turns a batch into normalised floats, so a
whole split fits on the device and batches are slices of a permutation.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets as tvd
from torchvision.datasets.utils import check_integrity

from rlaux.config import DATA_ENV_VAR, DATASET_FACTS, TrainConfig
from rlaux.data_source import npz_file
from rlaux.errors import ConfigError, DataFileError, DatasetNotFoundError, one_line


@dataclass(frozen=True)
class Split:
    x: Tensor  # uint8 (N, 3, 32, 32)
    y: Tensor  # int64 primary labels
    aux: Tensor | None  # int64 human auxiliary labels in block order (psi*y + rank), if any
    index: Tensor | None = None  # each image's position in the file's split (recorded as a hash: what a run read)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: Tensor) -> Split:
        index = idx if self.index is None else self.index[idx]
        return Split(self.x[idx], self.y[idx], None if self.aux is None else self.aux[idx], index)

    def to(self, device: torch.device | str) -> Split:
        def move(t):
            return None if t is None else t.to(device)

        return Split(move(self.x), move(self.y), move(self.aux), move(self.index))

    def index_sha256(self) -> str:
        """sha256 of the int64 positions of these images in their file's split (all of it when never subset)."""
        index = torch.arange(len(self)) if self.index is None else self.index
        return hashlib.sha256(index.cpu().to(torch.int64).numpy().tobytes()).hexdigest()


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    flip: bool
    load: Callable[[Path, bool, Path | None], tuple[Split, Split]]  # (root, download, the .npz to read or None)


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    info: DatasetInfo

    def to(self, device: torch.device | str) -> Splits:
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))


# ---------------------------------------------------------------- readers
def _split(x: np.ndarray, y, aux=None, channels_last: bool = True) -> Split:
    xt = torch.from_numpy(np.ascontiguousarray(x))
    if channels_last:
        xt = xt.permute(0, 3, 1, 2).contiguous()

    def to_long(a):
        return None if a is None else torch.as_tensor(np.asarray(a), dtype=torch.int64)

    return Split(xt, to_long(y), to_long(aux))


def _expected_files(factory: Any, root: Path, kw: dict) -> list[tuple[Path, str]]:
    """The files (and md5 sums) torchvision's integrity check wants for this dataset (a torchvision class,
    read by its class attributes)."""
    if hasattr(factory, "train_list"):  # CIFAR-10 / CIFAR-100: one folder of pickles
        folder = root / factory.base_folder
        listed = factory.train_list + factory.test_list
        files = [(folder / name, md5) for name, md5 in listed]
        return [*files, (folder / factory.meta["filename"], factory.meta["md5"])]
    if hasattr(factory, "split_list"):  # SVHN: one .mat file per split
        _, name, md5 = factory.split_list[kw["split"]]
        return [(root / name, md5)]
    return []


def _created_by(root: Path) -> Callable[[], None]:
    """Snapshot what exists at `root` now; the returned function removes whatever appeared since
    (a failed download's partial archive, its half-extracted folder, an empty ./data)."""
    missing = [p for p in (root, *root.parents) if not p.exists()]
    before = set(root.iterdir()) if root.is_dir() else set()

    def remove() -> None:
        if not root.is_dir():
            return
        for path in set(root.iterdir()) - before:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        for folder in missing:  # innermost first; kept if anything else appeared there meanwhile
            with contextlib.suppress(OSError):
                folder.rmdir()

    return remove


def _torchvision(factory: Callable[..., object], root: Path, download: bool, name: str, **kw):
    """Build a torchvision dataset; a missing dataset or failed download becomes one clear error,
    and so does a torchvision layout that exists but is incomplete or corrupted. A failed download
    leaves the data root as it found it."""
    undo = _created_by(root)
    try:
        return factory(root=str(root), download=download, **kw)
    except Exception as err:
        if download:
            undo()
        how = "the download failed" if download else "download is off"
        files = _expected_files(factory, root, kw)
        data_files = files[:-1] if hasattr(factory, "train_list") else files
        if any(path.exists() for path, _ in data_files):  # there, but incomplete or corrupted
            missing = [path.name for path, _ in files if not path.exists()]
            corrupt = [path.name for path, md5 in files if path.exists() and not check_integrity(str(path), md5)]
            what = "; ".join(
                part
                for part in (
                    f"missing: {', '.join(missing)}" if missing else "",
                    f"corrupted (md5 mismatch): {', '.join(corrupt)}" if corrupt else "",
                )
                if part
            )
            place = files[0][0].parent
            raise DatasetNotFoundError(
                one_line(
                    f"dataset {name!r}: the torchvision files under {place.resolve()} are incomplete or corrupted "
                    f"({what or err}) and {how}. Fix: delete "
                    f"{place.resolve() if place != root else ', '.join(p.name for p, _ in files)} and download again "
                    f"(--download true, with internet access), or point the data root (--data-root, `data_root`) at a complete copy"
                )
            ) from None
        raise DatasetNotFoundError(
            one_line(
                f"dataset {name!r} not found under data root {root.resolve()} and {how} ({err}). "
                f"Fix: point the data root (--data-root; config key `data_root`, also gymnasium.make(..., data_root=...); "
                f"or ${DATA_ENV_VAR}) at a folder holding "
                f"the torchvision files or the offline subsets (subsets/cifar10.npz, subsets/cifar100.npz), "
                f"or run once with internet access and download on."
            )
        ) from None


# The arrays an offline subset must hold: name -> (label range or None for images).
NPZ_ARRAYS: dict[str, dict[str, int | None]] = {
    "cifar10": {"x_train": None, "y_train": 10, "x_test": None, "y_test": 10},
    "cifar100": {
        "x_train": None,
        "y_train": 100,
        "y_train_coarse": 20,
        "x_test": None,
        "y_test": 100,
        "y_test_coarse": 20,
    },
}


def read_npz(path: Path, name: str) -> dict[str, np.ndarray]:
    """Read and check an offline subset: a readable archive with the right arrays, dtypes, shapes and labels.

    Every problem is a `DataFileError` naming the file, the array and the fix.
    """
    fix = f"replace {path} with a good copy (its layout: README, 'Data root'), or point --data-root elsewhere"
    wanted = NPZ_ARRAYS[name]
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in wanted if k not in archive.files]
            if missing:
                raise DataFileError(
                    f"data file {path} lacks the arrays {', '.join(missing)} (it has "
                    f"{', '.join(archive.files) or 'none'}); {fix}"
                )
            arrays = {k: archive[k] for k in wanted}
    except DataFileError:
        raise
    except Exception as err:
        raise DataFileError(
            one_line(
                f"data file {path} cannot be read ({type(err).__name__}: {err}); it is "
                f"truncated, corrupted or not an .npz archive; {fix}"
            )
        ) from None
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            raise DataFileError(
                f"data file {path}: x_{split} must be uint8 images of shape (N, 32, 32, 3), got "
                f"{x.dtype} {x.shape}; {fix}"
            )
        if len(x) == 0:
            raise DataFileError(f"data file {path}: x_{split} holds no images; {fix}")
        for key in [k for k in wanted if k.startswith(f"y_{split}")]:
            y, classes = arrays[key], wanted[key]
            assert classes is not None  # label arrays name their class count (NPZ_ARRAYS)
            if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
                raise DataFileError(
                    f"data file {path}: {key} must be a 1-d integer label array, got {y.dtype} {y.shape}; {fix}"
                )
            if len(y) != len(x):
                raise DataFileError(
                    f"data file {path}: {key} has {len(y)} labels for {len(x)} images in x_{split}; {fix}"
                )
            if y.min() < 0 or y.max() >= classes:
                raise DataFileError(
                    f"data file {path}: {key} has labels {y.min()}..{y.max()}, but {name} has "
                    f"{classes} classes (0..{classes - 1}); is this the right file? {fix}"
                )
    if name == "cifar100":
        fine = np.concatenate([arrays["y_train"], arrays["y_test"]])
        coarse = np.concatenate([arrays["y_train_coarse"], arrays["y_test_coarse"]])
        pairs = set(zip(fine.tolist(), coarse.tolist(), strict=False))
        per_fine = {f for f, _ in pairs}
        per_coarse = np.bincount([c for _, c in pairs], minlength=20)
        if len(pairs) != len(per_fine) or per_coarse.max() > 5:
            raise DataFileError(
                f"data file {path}: y_*/y_*_coarse do not follow CIFAR-100's hierarchy (each fine "
                f"class in one superclass, at most 5 per superclass); {fix}"
            )
    return arrays


def block_order(fine: np.ndarray, coarse: np.ndarray, psi: int) -> np.ndarray:
    """Renumber fine labels so that fine class f of superclass c becomes psi*c + rank(f in c)."""
    pairs = sorted({(int(c), int(f)) for f, c in zip(fine, coarse, strict=False)})
    rank: dict[int, int] = {}
    for c, f in pairs:
        rank[f] = psi * c + sum(1 for c2, f2 in pairs if c2 == c and f2 < f)
    return np.vectorize(rank.__getitem__)(fine)


def _load_cifar10(root: Path, download: bool, npz: Path | None) -> tuple[Split, Split]:
    if npz is not None:
        d = read_npz(npz, "cifar10")
        return _split(d["x_train"], d["y_train"]), _split(d["x_test"], d["y_test"])
    tr, te = (_torchvision(tvd.CIFAR10, root, download, "cifar10", train=t) for t in (True, False))
    return _split(tr.data, tr.targets), _split(te.data, te.targets)


def _load_cifar100_20(root: Path, download: bool, npz: Path | None) -> tuple[Split, Split]:
    """Primary = the 20 superclasses; human auxiliary task = the 100 fine classes, 5 per superclass."""
    if npz is not None:
        d = read_npz(npz, "cifar100")
        parts = [(d[f"x_{s}"], d[f"y_{s}"], d[f"y_{s}_coarse"]) for s in ("train", "test")]
    else:
        parts = []
        for split, train in (("train", True), ("test", False)):
            ds = _torchvision(tvd.CIFAR100, root, download, "cifar100-20", train=train)
            with open(Path(ds.root) / ds.base_folder / split, "rb") as f:  # coarse labels: raw pickle
                raw = pickle.load(f, encoding="latin1")
            parts.append((ds.data, np.asarray(raw["fine_labels"]), np.asarray(raw["coarse_labels"])))
    fine_all = np.concatenate([p[1] for p in parts])
    coarse_all = np.concatenate([p[2] for p in parts])
    remap = dict(zip(fine_all.tolist(), block_order(fine_all, coarse_all, psi=5).tolist(), strict=False))
    train_split, test_split = (_split(x, coarse, np.vectorize(remap.__getitem__)(fine)) for x, fine, coarse in parts)
    return train_split, test_split


CIFAR10_PAIRS = ((0, 3), (1, 4), (2, 7), (5, 8), (6, 9))
"""cifar10-pairs' primary classes, declared once: CIFAR-10 classes paired across the animal/vehicle divide
(airplane+cat, automobile+deer, bird+horse, dog+ship, frog+truck), so a pair shares little but its label and the
10 classes are a known useful auxiliary task."""


def _load_cifar10_pairs(root: Path, download: bool, npz: Path | None) -> tuple[Split, Split]:
    """Primary = the pair of a CIFAR-10 image's class; human auxiliary task = its class, in block order (psi = 2)."""
    pair_of = np.empty(10, dtype=np.int64)
    for pair, classes in enumerate(CIFAR10_PAIRS):
        pair_of[list(classes)] = pair
    fine = np.arange(10)
    aux_of = block_order(fine, pair_of, psi=2)  # class -> 2 * pair + rank in the pair
    pair_t, aux_t = torch.from_numpy(pair_of), torch.from_numpy(aux_of)

    def regroup(split: Split) -> Split:
        return Split(split.x, pair_t[split.y], aux_t[split.y], split.index)

    train, test = _load_cifar10(root, download, npz)
    return regroup(train), regroup(test)


def _load_svhn(root: Path, download: bool, npz: Path | None) -> tuple[Split, Split]:
    tr, te = (_torchvision(tvd.SVHN, root, download, "svhn", split=s) for s in ("train", "test"))
    return _split(tr.data, tr.labels, channels_last=False), _split(te.data, te.labels, channels_last=False)


CIFAR_NORM = {"mean": (0.5, 0.5, 0.5), "std": (0.2, 0.2, 0.2)}
DATASETS: dict[str, DatasetInfo] = {
    "cifar100-20": DatasetInfo(
        num_classes=DATASET_FACTS["cifar100-20"].num_classes, flip=True, load=_load_cifar100_20, **CIFAR_NORM
    ),
    "cifar10": DatasetInfo(
        num_classes=DATASET_FACTS["cifar10"].num_classes, flip=True, load=_load_cifar10, **CIFAR_NORM
    ),
    "cifar10-pairs": DatasetInfo(
        num_classes=DATASET_FACTS["cifar10-pairs"].num_classes, flip=True, load=_load_cifar10_pairs, **CIFAR_NORM
    ),
    "svhn": DatasetInfo(
        num_classes=DATASET_FACTS["svhn"].num_classes,
        flip=False,
        load=_load_svhn,
        mean=(0.4377, 0.4438, 0.4728),
        std=(0.1980, 0.2010, 0.1970),
    ),
}


# ---------------------------------------------------------------- subsets
def stratified_indices(labels: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """`size` indices whose class shares match `labels` (largest-remainder rounding), sorted."""
    if size > len(labels):
        raise ValueError(f"asked for {size} samples but only {len(labels)} exist; lower the size")
    classes, counts = labels.unique(return_counts=True)
    exact = counts.double() * size / len(labels)
    quota = exact.floor().long()
    leftover = size - int(quota.sum())
    quota[torch.argsort(exact - quota, descending=True, stable=True)[:leftover]] += 1
    picked = []
    for c, q in zip(classes.tolist(), quota.tolist(), strict=False):
        members = (labels == c).nonzero().squeeze(1)
        picked.append(members[torch.randperm(len(members), generator=generator)[:q]])
    return torch.cat(picked).sort().values


def load_splits(cfg: TrainConfig) -> Splits:
    """Train / validation / test splits, seeded by `cfg.seed`, on the CPU."""
    info = DATASETS[cfg.dataset]
    root = Path(cfg.data_root)
    if root.exists() and not root.is_dir():
        raise DatasetNotFoundError(
            f"data root {root} is a file, not a folder; point --data-root (or ${DATA_ENV_VAR}) "
            f"at the folder that holds the datasets"
        )
    train, test = info.load(root, cfg.download, npz_file(cfg.dataset, root, cfg.offline_subsets, cfg.data_sha256))
    for key, split, size in (("train_size", train, cfg.train_size), ("test_size", test, cfg.test_size)):
        if size is not None and size > len(split):
            raise ConfigError(
                f"{key} {size} is more than the {len(split)} images {cfg.dataset!r} has under "
                f"{root}; lower --{key.replace('_', '-')} (or leave it unset for all)"
            )
    g = torch.Generator().manual_seed(cfg.seed)
    if cfg.train_size is not None:
        train = train.take(stratified_indices(train.y, cfg.train_size, g))
    if cfg.test_size is not None:
        test = test.take(stratified_indices(test.y, cfg.test_size, g))
    n_val = max(info.num_classes, round(cfg.val_fraction * len(train)))
    if n_val >= len(train):
        raise ConfigError(
            f"train_size {len(train)} leaves no training images after the validation split "
            f"({n_val} images, at least one per class); raise --train-size or lower --val-fraction"
        )
    val_idx = stratified_indices(train.y, n_val, g)
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_idx] = False
    return Splits(train=train.take(keep.nonzero().squeeze(1)), val=train.take(val_idx), test=test, info=info)
