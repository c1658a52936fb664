"""Data layer: stratified subsets, disjoint splits, batched transforms, offline errors."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd

from rlaux.augment import BatchAugment
from rlaux.config import build_config
from rlaux.data import DATASETS, block_order, load_splits, stratified_indices
from rlaux.errors import DatasetNotFoundError


def _cfg(data_root, **kw):
    return build_config(dict(dataset="cifar10", data_root=str(data_root), download=False) | kw)


def test_stratified_indices_have_requested_per_class_counts():
    labels = torch.arange(10).repeat_interleave(100)
    idx = stratified_indices(labels, 250, torch.Generator().manual_seed(0))
    assert len(idx) == len(idx.unique()) == 250
    counts = torch.bincount(labels[idx], minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 250  # 25 each, remainder spread


def test_stratified_indices_follow_unbalanced_class_shares():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    idx = stratified_indices(labels, 50, torch.Generator().manual_seed(1))
    assert torch.bincount(labels[idx]).tolist() == [30, 15, 5]


def test_stratified_indices_reject_oversized_request():
    with pytest.raises(ValueError, match="only 3 exist"):
        stratified_indices(torch.tensor([0, 1, 1]), 4, torch.Generator())


def test_splits_are_stratified_and_disjoint(data_root):
    s = load_splits(_cfg(data_root, train_size=2000, test_size=500, val_fraction=0.1))
    assert (len(s.train), len(s.val), len(s.test)) == (1800, 200, 500)
    assert torch.bincount(s.train.y).tolist() == [180] * 10
    assert torch.bincount(s.val.y).tolist() == [20] * 10
    assert torch.bincount(s.test.y).tolist() == [50] * 10
    assert s.train.x.dtype == torch.uint8 and s.train.x.shape[1:] == (3, 32, 32)
    flat = lambda split: {bytes(img.numpy()) for img in split.x}  # noqa: E731
    train, val, test = flat(s.train), flat(s.val), flat(s.test)
    assert not train & val and not train & test and not val & test


def test_same_seed_same_split_other_seed_other_split(data_root):
    a, b, c = (load_splits(_cfg(data_root, train_size=500, seed=s)) for s in (0, 0, 1))
    assert torch.equal(a.val.x, b.val.x) and not torch.equal(a.val.x, c.val.x)


def test_cifar100_20_has_superclass_primary_and_block_ordered_fine_labels(data_root):
    s = load_splits(build_config(dict(dataset="cifar100-20", data_root=str(data_root), download=False)))
    for split in (s.train, s.val, s.test):
        assert split.y.max() < 20 and split.aux is not None
        assert torch.equal(split.aux // 5, split.y)  # fine label lies in its superclass block
    d = np.load(Path(data_root) / "subsets" / "cifar100.npz")
    assert len(s.train) + len(s.val) == len(d["x_train"])


def test_block_order_maps_each_superclass_to_its_block():
    fine = np.array([7, 3, 9, 1, 3])
    coarse = np.array([1, 0, 1, 0, 0])
    assert block_order(fine, coarse, psi=2).tolist() == [2, 1, 3, 0, 1]


def test_missing_dataset_offline_names_dataset_root_and_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_splits(_cfg(tmp_path, dataset="svhn"))
    msg = str(err.value)
    assert "'svhn'" in msg and str(tmp_path) in msg and "--data-root" in msg and "RLAUX_DATA" in msg


def test_offline_subsets_can_be_refused(data_root):
    """The paper profile sets offline_subsets: false, so it never trains on a subset by accident."""
    with pytest.raises(DatasetNotFoundError, match="'cifar10'"):
        load_splits(_cfg(data_root, offline_subsets=False))


def test_failed_download_becomes_the_same_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tvd.cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_splits(_cfg(tmp_path, download=True))
    assert not any(tmp_path.rglob("*.npz"))


@pytest.mark.parametrize("dataset, module", [("cifar10", tvd.cifar), ("cifar100-20", tvd.cifar), ("svhn", tvd.svhn)])
def test_failed_download_removes_what_it_created(tmp_path, monkeypatch, dataset, module):
    """A download that dies halfway leaves no empty ./data, partial archive or half-extracted folder;
    what was already under the data root stays."""

    def dies_halfway(url, root, filename=None, *args, **kwargs):
        folder = Path(root) / "half-extracted"
        folder.mkdir(parents=True)
        (folder / "part").write_bytes(b"x")
        Path(root, filename or "archive").write_bytes(b"partial")
        raise urllib.error.URLError("connection reset")

    monkeypatch.setattr(module, "download_and_extract_archive" if module is tvd.cifar else "download_url", dies_halfway)
    fresh = tmp_path / "fresh" / "data"  # neither it nor its parent exists yet
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_splits(_cfg(fresh, dataset=dataset, download=True))
    assert not (tmp_path / "fresh").exists()
    kept = tmp_path / "kept"
    (kept / "notes").mkdir(parents=True)
    (kept / "mine.txt").write_text("mine")
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_splits(_cfg(kept, dataset=dataset, download=True))
    assert sorted(p.name for p in kept.iterdir()) == ["mine.txt", "notes"] and not any((kept / "notes").iterdir())


def test_missing_dataset_error_names_no_repository_path(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_splits(_cfg(tmp_path, dataset="cifar10"))
    assert "shared" not in str(err.value) and "subsets/cifar10.npz" in str(err.value)


def test_transforms_keep_shape_and_dtype_and_vary_only_by_seed():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    aug = BatchAugment(DATASETS["cifar10"])
    out0 = aug.crop_flip(x, torch.Generator().manual_seed(0))
    again = aug.crop_flip(x, torch.Generator().manual_seed(0))
    out1 = aug.crop_flip(x, torch.Generator().manual_seed(1))
    assert out0.shape == x.shape and out0.dtype == torch.uint8
    assert torch.equal(out0, again) and not torch.equal(out0, out1)
    normed = aug(x, torch.Generator().manual_seed(0))
    assert normed.dtype == torch.float32 and normed.shape == x.shape
    # evaluation transform: docs/method.md §3's Normalize(mean 0.5, std 0.2) on every pixel of every channel
    torch.testing.assert_close(aug.normalize(x), (x.float() / 255 - 0.5) / 0.2)
    # bit for bit torchvision's normalize, with the constants kept on the device instead of rebuilt per call
    from torchvision.transforms.v2.functional import normalize

    info = DATASETS["cifar10"]
    assert torch.equal(aug.normalize(x), normalize(x.float() / 255, list(info.mean), list(info.std)))


def test_crop_is_a_shifted_window_and_flip_mirrors():
    x = torch.arange(2 * 32 * 32, dtype=torch.uint8).reshape(1, 2, 32, 32).expand(64, 2, 32, 32).contiguous()
    aug = BatchAugment(DATASETS["cifar10"], pad=4)
    out = aug.crop_flip(x, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x[0], (4, 4, 4, 4))
    windows = {bytes(padded[:, r : r + 32, c : c + 32].numpy()) for r in range(9) for c in range(9)}
    windows |= {bytes(padded[:, r : r + 32, c : c + 32].flip(-1).numpy()) for r in range(9) for c in range(9)}
    assert all(bytes(img.numpy()) in windows for img in out)
    assert len({bytes(img.numpy()) for img in out}) > 10  # per-image offsets, not one per batch


def test_svhn_never_flips():
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    aug = BatchAugment(DATASETS["svhn"], pad=0)
    assert torch.equal(aug.crop_flip(x, torch.Generator().manual_seed(0)), x)
