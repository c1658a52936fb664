"""Which data a run reads, named by its content (no torch: plans are written without it).

A run is its config *and* the images it read: the same config on another data file (the 1,117-image
CIFAR-100 slice or the complete set, a JPEG-decoded CIFAR-10 subset or torchvision's originals) is
another run. `locate` decides which file a dataset's loader reads under a data root (`rlaux.data`
reads exactly that file), and names it by content: the sha256 of the `.npz` archive, or, when
torchvision's official files are read, the sha256 of the md5 list torchvision checks them against.
`resolve` pins that digest into the config (`data_sha256`), so every caller that compares configs
(plans, adoption, `--resume`, dispatch) compares the data too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rlaux.errors import DataFileError
from rlaux.io import workspace_path

if TYPE_CHECKING:
    from rlaux.config import TrainConfig

NPZ_NAME = {"cifar10": "cifar10", "cifar10-pairs": "cifar10", "cifar100-20": "cifar100"}
"""The offline archive each dataset reads (`subsets/<name>.npz`, else `<name>.npz` in the data root)."""
TORCHVISION = {
    "cifar10": ("CIFAR10", "cifar-10-batches-py/data_batch_1"),
    "cifar10-pairs": ("CIFAR10", "cifar-10-batches-py/data_batch_1"),
    "cifar100-20": ("CIFAR100", "cifar-100-python/train"),
    "svhn": ("SVHN", None),
}
"""Each dataset's torchvision class, and the file whose presence makes the loader prefer torchvision's files."""


@dataclass(frozen=True)
class DataSource:
    """What a run reads: `file` (an `.npz` path, or "torchvision:<class>") and its content's sha256."""

    file: str
    sha256: str

    def describe(self) -> str:
        return f"{self.file} (sha256 {self.sha256[:12]}…)"


def _candidates(dataset: str, root: Path) -> list[Path]:
    """The offline archives a dataset may read under a data root, in order of preference: the offline subsets, an
    archive at the top, and `full/` (the complete sets; read when a profile pins one by its sha256)."""
    name = NPZ_NAME.get(dataset)
    if name is None:
        return []
    return [
        p
        for p in (root / "subsets" / f"{name}.npz", root / f"{name}.npz", root / "full" / f"{name}.npz")
        if p.is_file()
    ]


def npz_file(dataset: str, root: Path, offline_subsets: bool, sha256: str | None = None) -> Path | None:
    """The offline archive the loader reads, or None when it reads torchvision's files. Unpinned (`sha256` None):
    with `offline_subsets` on and torchvision's files absent, the first of `_candidates`. Pinned: the candidate with
    that content (None when none has it, or when it is torchvision's files' digest)."""
    marker = TORCHVISION.get(dataset, (None, None))[1]
    if not offline_subsets or (sha256 is None and marker is not None and (root / marker).exists()):
        return None
    for path in _candidates(dataset, root):
        if sha256 is None or file_sha256(path) == sha256:
            return path
    return None


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # keyed by size and mtime: a rewritten file is re-read
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def _torchvision_digest(cls_name: str) -> str:
    """sha256 of the (file, md5) list torchvision checks a dataset's official files against."""
    from torchvision import datasets  # torch: only where torchvision's own files are read

    cls = getattr(datasets, cls_name)
    listed = (
        [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
        if hasattr(cls, "train_list")
        else sorted(cls.split_list[s][1:] for s in ("train", "test"))
    )
    return hashlib.sha256(json.dumps([list(pair) for pair in listed]).encode()).hexdigest()


def locate(dataset: str, root: Path, offline_subsets: bool, sha256: str | None = None) -> DataSource | None:
    """The data a run of `dataset` reads under `root` (pinned to `sha256` when given). A missing dataset is the
    loader's error to raise (with its download); here it is named by torchvision's checksums, the files it would
    read."""
    root = Path(root)
    npz = npz_file(dataset, root, offline_subsets, sha256)
    if npz is not None:
        return DataSource(str(npz), file_sha256(npz))
    if dataset not in TORCHVISION:  # a dataset this module does not know (a test's toy): nothing to name it by
        return None
    if sha256 is not None:  # pinned: an archive elsewhere under the root is not this run's data
        found = [DataSource(str(p), file_sha256(p)).describe() for p in _candidates(dataset, root)]
        torchvision = DataSource(f"torchvision:{TORCHVISION[dataset][0]}", _torchvision_digest(TORCHVISION[dataset][0]))
        if offline_subsets and torchvision.sha256 != sha256:
            raise DataFileError(
                f"the config pins data sha256 {sha256[:12]}… for {dataset!r}, but data root {root} holds "
                f"{', '.join(found) or 'no offline archive for it'}; point --data-root at a folder holding the pinned "
                f"data, or drop data_sha256 to run on this data (another run)"
            )
        return torchvision
    cls_name = TORCHVISION[dataset][0]
    return DataSource(f"torchvision:{cls_name}", _torchvision_digest(cls_name))


def resolve(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with `data_sha256` set to the data it reads under its data root; a pinned digest that the data root
    does not hold is refused, naming both."""
    root = workspace_path(Path(cfg.data_root))  # also from inside one of DVC's queued copies
    source = locate(cfg.dataset, root, cfg.offline_subsets, cfg.data_sha256)
    if source is None:
        return cfg
    if cfg.data_sha256 is not None and cfg.data_sha256 != source.sha256:
        raise DataFileError(
            f"the config pins data sha256 {cfg.data_sha256[:12]}…, but data root {root} holds "
            f"{source.describe()} for {cfg.dataset!r}; point --data-root at the pinned data, or drop data_sha256 "
            f"to run on this data (another run)"
        )
    return cfg.model_copy(update={"data_sha256": source.sha256})
