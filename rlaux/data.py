"""Datasets as uint8 tensors in memory: stratified subsets and a validation split.

Each dataset is read from a torchvision layout under the data root (downloaded there when
`download` is on) or from the offline `.npz` subsets described in shared/data/README.md.
Images stay uint8 NCHW until `augment.py` turns a batch into normalised floats, so a
whole split fits on the device and batches are slices of a permutation.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets as tvd

from rlaux.config import DATA_ENV_VAR, NUM_CLASSES, TrainConfig
from rlaux.errors import DatasetNotFoundError


@dataclass(frozen=True)
class Split:
    x: Tensor  # uint8 (N, 3, 32, 32)
    y: Tensor  # int64 primary labels
    aux: Tensor | None  # int64 human auxiliary labels in block order (5*y + rank), if any

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: Tensor) -> Split:
        return Split(self.x[idx], self.y[idx], None if self.aux is None else self.aux[idx])

    def to(self, device: torch.device | str) -> Split:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Split(move(self.x), move(self.y), move(self.aux))


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    flip: bool
    load: Callable[[Path, bool, bool], tuple[Split, Split]]  # (root, download, offline_subsets)


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
    to_long = lambda a: None if a is None else torch.as_tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    return Split(xt, to_long(y), to_long(aux))


def _find_npz(root: Path, name: str) -> Path | None:
    for p in (root / "subsets" / f"{name}.npz", root / f"{name}.npz"):
        if p.is_file():
            return p
    return None


def _torchvision(factory: Callable[..., object], root: Path, download: bool, name: str, **kw):
    """Build a torchvision dataset; a missing dataset or failed download becomes one clear error."""
    try:
        return factory(root=str(root), download=download, **kw)
    except Exception as err:  # torchvision raises RuntimeError (missing) or URLError/OSError (offline)
        how = "the download failed" if download else "download is off"
        raise DatasetNotFoundError(
            f"dataset {name!r} not found under data root {root.resolve()} and {how} ({err}). "
            f"Fix: point --data-root (params key `data_root`, or ${DATA_ENV_VAR}) at a folder holding "
            f"the torchvision files or the offline subsets (e.g. ../shared/data), or run once "
            f"with internet access and download on."
        ) from None


def block_order(fine: np.ndarray, coarse: np.ndarray, psi: int) -> np.ndarray:
    """Renumber fine labels so that fine class f of superclass c becomes psi*c + rank(f in c)."""
    pairs = sorted({(int(c), int(f)) for f, c in zip(fine, coarse)})
    rank: dict[int, int] = {}
    for c, f in pairs:
        rank[f] = psi * c + sum(1 for c2, f2 in pairs if c2 == c and f2 < f)
    return np.vectorize(rank.__getitem__)(fine)


def _load_cifar10(root: Path, download: bool, subsets: bool) -> tuple[Split, Split]:
    npz = _find_npz(root, "cifar10") if subsets else None
    if npz is not None and not (root / "cifar-10-batches-py" / "data_batch_1").exists():
        d = np.load(npz)
        return _split(d["x_train"], d["y_train"]), _split(d["x_test"], d["y_test"])
    tr, te = (_torchvision(tvd.CIFAR10, root, download, "cifar10", train=t) for t in (True, False))
    return _split(tr.data, tr.targets), _split(te.data, te.targets)


def _load_cifar100_20(root: Path, download: bool, subsets: bool) -> tuple[Split, Split]:
    """Primary = the 20 superclasses; human auxiliary task = the 100 fine classes, 5 per superclass."""
    npz = _find_npz(root, "cifar100") if subsets else None
    if npz is not None and not (root / "cifar-100-python" / "train").exists():
        d = np.load(npz)
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
    remap = dict(zip(fine_all.tolist(), block_order(fine_all, coarse_all, psi=5).tolist()))
    return tuple(_split(x, coarse, np.vectorize(remap.__getitem__)(fine)) for x, fine, coarse in parts)  # type: ignore[return-value]


def _load_svhn(root: Path, download: bool, subsets: bool) -> tuple[Split, Split]:
    tr, te = (_torchvision(tvd.SVHN, root, download, "svhn", split=s) for s in ("train", "test"))
    return tuple(_split(d.data, d.labels, channels_last=False) for d in (tr, te))  # type: ignore[return-value]


CIFAR_NORM = dict(mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
DATASETS: dict[str, DatasetInfo] = {
    "cifar100-20": DatasetInfo(num_classes=NUM_CLASSES["cifar100-20"], flip=True, load=_load_cifar100_20, **CIFAR_NORM),
    "cifar10": DatasetInfo(num_classes=NUM_CLASSES["cifar10"], flip=True, load=_load_cifar10, **CIFAR_NORM),
    "svhn": DatasetInfo(
        num_classes=NUM_CLASSES["svhn"], flip=False, load=_load_svhn,
        mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
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
    for c, q in zip(classes.tolist(), quota.tolist()):
        members = (labels == c).nonzero().squeeze(1)
        picked.append(members[torch.randperm(len(members), generator=generator)[:q]])
    return torch.cat(picked).sort().values


def load_splits(cfg: TrainConfig) -> Splits:
    """Train / validation / test splits, seeded by `cfg.seed`, on the CPU."""
    info = DATASETS[cfg.dataset]
    train, test = info.load(Path(cfg.data_root), cfg.download, cfg.offline_subsets)
    g = torch.Generator().manual_seed(cfg.seed)
    if cfg.train_size is not None:
        train = train.take(stratified_indices(train.y, cfg.train_size, g))
    if cfg.test_size is not None:
        test = test.take(stratified_indices(test.y, cfg.test_size, g))
    n_val = max(info.num_classes, round(cfg.val_fraction * len(train)))
    val_idx = stratified_indices(train.y, n_val, g)
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_idx] = False
    return Splits(train=train.take(keep.nonzero().squeeze(1)), val=train.take(val_idx), test=test, info=info)
