"""`rlaux subsets`: the offline subsets (`subsets/cifar10.npz`, `subsets/cifar100.npz`) built from
the official CIFAR files, so the tests and the smoke and study profiles run on any machine that can
download the datasets once, not only where a prepared copy exists.

The layout is the one `rlaux.data.read_npz` reads (README, "Data root"): CIFAR-10 class-balanced,
1,000 train and 200 test images per class drawn with seed 0, in the official order; CIFAR-100 the
first 1,117 train and 916 test images of the official order with fine and coarse labels, and the
complete label lists. Built from the original bytes, so `exact_*` is true for every image.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from torchvision import datasets as tvd

from rlaux.data import _torchvision, read_npz
from rlaux.errors import DataFileError, one_line
from rlaux.io import atomic_write

CIFAR10_PER_CLASS = {"train": 1000, "test": 200}
CIFAR100_FIRST = {"train": 1117, "test": 916}
SEED = 0


def build_subsets(
    root: Path,
    download: bool = False,
    cifar10_per_class: dict[str, int] = CIFAR10_PER_CLASS,
    cifar100_first: dict[str, int] = CIFAR100_FIRST,
    seed: int = SEED,
) -> list[Path]:
    """Write `root/subsets/cifar10.npz` and `cifar100.npz` from the torchvision files under `root`
    (downloaded first with `download`); each file is written whole or not at all."""
    root = Path(root)
    if download:  # torchvision downloads and checks the md5 sums; a failure leaves root as it was
        for factory, name in ((tvd.CIFAR10, "cifar10"), (tvd.CIFAR100, "cifar100-20")):
            for train in (True, False):
                _torchvision(factory, root, True, name, train=train)
    c10 = {split: _read(root, tvd.CIFAR10, split, ("labels",)) for split in ("train", "test")}
    c100 = {split: _read(root, tvd.CIFAR100, split, ("fine_labels", "coarse_labels")) for split in ("train", "test")}
    rng = np.random.default_rng(seed)
    cifar10: dict[str, np.ndarray] = {}
    for split, (x, labels) in c10.items():
        y = labels["labels"]
        per_class = cifar10_per_class[split]
        short = [c for c in range(10) if (y == c).sum() < per_class]
        if short:
            raise DataFileError(
                f"CIFAR-10 {split} under {root} has fewer than {per_class} images of classes {short}; "
                f"is it the complete dataset? Delete {root / tvd.CIFAR10.base_folder} and download again"
            )
        index = np.sort(
            np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)])
        )
        cifar10 |= {f"x_{split}": x[index], f"y_{split}": y[index], f"{split}_index": index}
        cifar10[f"exact_{split}"] = np.ones(len(index), dtype=bool)
    cifar100: dict[str, np.ndarray] = {}
    for split, (x, labels) in c100.items():
        index = np.arange(min(cifar100_first[split], len(x)))
        fine, coarse = labels["fine_labels"], labels["coarse_labels"]
        cifar100 |= {
            f"x_{split}": x[index],
            f"y_{split}": fine[index],
            f"y_{split}_coarse": coarse[index],
            f"{split}_index": index,
            f"{split}_fine_labels_all": fine,
            f"{split}_coarse_labels_all": coarse,
        }
    out = root / "subsets"
    paths = [_write_npz(out / "cifar10.npz", cifar10), _write_npz(out / "cifar100.npz", cifar100)]
    for path, name in zip(paths, ("cifar10", "cifar100"), strict=True):
        read_npz(path, name)  # what rlaux will read: checked once here
    return paths


def _read(root: Path, factory: Any, split: str, label_keys: tuple[str, ...]) -> tuple[np.ndarray, dict]:
    """One split of a CIFAR torchvision folder, read from its pickles: images (N, 32, 32, 3) uint8 and labels."""
    folder = root / factory.base_folder
    names = [name for name, _ in (factory.train_list if split == "train" else factory.test_list)]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DataFileError(
            f"no CIFAR files to build the subsets from: {folder} lacks {', '.join(missing)}. Fix: pass "
            f"--download (needs internet), or point --root at a folder holding {factory.base_folder}/"
        )
    images: list[np.ndarray] = []
    labels: dict[str, list[np.ndarray]] = {key: [] for key in label_keys}
    for name in names:
        try:
            with open(folder / name, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            for key in label_keys:
                labels[key].append(np.asarray(batch[key], dtype=np.int64))
        except Exception as err:
            raise DataFileError(
                one_line(
                    f"{folder / name} cannot be read as a CIFAR batch ({type(err).__name__}: {err}); "
                    f"delete {folder} and download again"
                )
            ) from None
    x = np.concatenate(images).transpose(0, 2, 3, 1).copy()
    return x, {key: np.concatenate(parts) for key, parts in labels.items()}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]  # numpy's stub: a **dict might name allow_pickle
    return path
