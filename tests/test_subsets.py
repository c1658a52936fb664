"""`rlaux subsets`: the offline subsets built from a torchvision-layout CIFAR folder that the test writes itself."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd

from rlaux.cli import main
from rlaux.config import build_config
from rlaux.data import load_splits, read_npz
from rlaux.errors import DataFileError
from rlaux.subsets import build_subsets

REPO = Path(__file__).resolve().parents[1]
PER_CLASS = {"train": 20, "test": 5}
FIRST = {"train": 120, "test": 40}


def write_cifar(root: Path, c10_per_file: int = 60, c100_per_file: int = 150) -> dict[str, np.ndarray]:
    """CIFAR-10 and CIFAR-100 folders in torchvision's layout (pickled batches, CHW rows) of random images;
    returns the images. By default small: 5 CIFAR-10 train files of 60 (30 images per class)."""
    rng = np.random.default_rng(0)
    written = {}
    for factory, per_file in ((tvd.CIFAR10, c10_per_file), (tvd.CIFAR100, c100_per_file)):
        folder = root / factory.base_folder
        folder.mkdir(parents=True)
        for split, files in (("train", factory.train_list), ("test", factory.test_list)):
            images = []
            for name, _ in files:
                x = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
                if factory is tvd.CIFAR10:
                    batch = {"data": x.reshape(per_file, -1), "labels": (np.arange(per_file) % 10).tolist()}
                else:
                    fine = rng.integers(0, 100, per_file)
                    batch = {"data": x.reshape(per_file, -1), "fine_labels": fine.tolist(), "coarse_labels": fine // 5}
                with open(folder / name, "wb") as f:
                    pickle.dump(batch, f)
                images.append(x.transpose(0, 2, 3, 1))
            written[f"{factory.__name__}_{split}"] = np.concatenate(images)
    return written


def test_subsets_are_balanced_seeded_in_official_order_and_read_by_the_data_layer(tmp_path, monkeypatch):
    images = write_cifar(tmp_path / "root")
    paths = build_subsets(tmp_path / "root", cifar10_per_class=PER_CLASS, cifar100_first=FIRST)
    assert [p.name for p in paths] == ["cifar10.npz", "cifar100.npz"]
    c10 = dict(np.load(paths[0]))
    for split in ("train", "test"):
        x, y, index = c10[f"x_{split}"], c10[f"y_{split}"], c10[f"{split}_index"]
        assert x.shape == (10 * PER_CLASS[split], 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
        assert (np.bincount(y, minlength=10) == PER_CLASS[split]).all()  # class-balanced
        assert (np.diff(index) > 0).all() and c10[f"exact_{split}"].all()  # official order, original bytes
        np.testing.assert_array_equal(x, images[f"CIFAR10_{split}"][index])  # each image is the one its index names
        np.testing.assert_array_equal(y, index % 10)
    c100 = dict(np.load(paths[1]))
    for split in ("train", "test"):
        n = min(FIRST[split], len(images[f"CIFAR100_{split}"]))
        np.testing.assert_array_equal(c100[f"x_{split}"], images[f"CIFAR100_{split}"][:n])  # the first n, as they are
        np.testing.assert_array_equal(c100[f"y_{split}_coarse"], c100[f"y_{split}"] // 5)
        assert len(c100[f"{split}_fine_labels_all"]) == len(images[f"CIFAR100_{split}"])
        read_npz(paths[1], "cifar100")

    again = build_subsets(tmp_path / "root", cifar10_per_class=PER_CLASS, cifar100_first=FIRST)
    assert np.array_equal(np.load(again[0])["train_index"], c10["train_index"])  # seeded: the same draw

    offline = tmp_path / "offline"  # the subsets alone, as a data root: the normal data layer reads them
    shutil.copytree(tmp_path / "root" / "subsets", offline / "subsets")
    monkeypatch.delenv("RLAUX_DATA", raising=False)
    cfg = build_config({"dataset": "cifar10", "data_root": str(offline), "train_size": 100, "download": False})
    splits = load_splits(cfg)
    assert len(splits.train) + len(splits.val) == 100 and len(splits.test) == 10 * PER_CLASS["test"]
    assert splits.train.x.dtype == torch.uint8


def test_another_seed_draws_other_images(tmp_path):
    write_cifar(tmp_path)
    first = np.load(build_subsets(tmp_path, cifar10_per_class=PER_CLASS, cifar100_first=FIRST)[0])["train_index"]
    second = np.load(build_subsets(tmp_path, cifar10_per_class=PER_CLASS, cifar100_first=FIRST, seed=1)[0])
    assert not np.array_equal(first, second["train_index"])


def test_no_cifar_files_is_one_clear_error_and_writes_nothing(tmp_path, capsys):
    with pytest.raises(DataFileError, match=r"lacks data_batch_1.*--download"):
        build_subsets(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["subsets", "--root", str(tmp_path)])
    assert exit_.value.code == 2 and "rlaux: error: no CIFAR files" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_too_few_images_of_a_class_names_the_classes(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(DataFileError, match=r"fewer than 31 images of classes \[0, 1"):
        build_subsets(tmp_path, cifar10_per_class={"train": 31, "test": 5}, cifar100_first=FIRST)
    assert not (tmp_path / "subsets").exists()


def data_script(data_root: Path) -> subprocess.CompletedProcess:
    """scripts/data.sh as scripts/test.sh runs it (sourced, then `require_data`), with RLAUX_DATA set."""
    env = os.environ | {"RLAUX_DATA": str(data_root), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = "set -euo pipefail; source scripts/data.sh; require_data; echo ready"
    return subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_test_command_stops_with_one_line_when_there_is_no_data(tmp_path):
    res = data_script(tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    assert (
        res.stderr.count("\n") == 1 and "no CIFAR data" in res.stderr and "no torchvision CIFAR folders" in res.stderr
    )


def test_test_command_builds_the_subsets_from_torchvision_folders(tmp_path):
    write_cifar(tmp_path, c10_per_file=2000, c100_per_file=1200)  # enough for the full-size subsets
    res = data_script(tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == "ready", res.stderr
    c10 = read_npz(tmp_path / "subsets" / "cifar10.npz", "cifar10")
    assert len(c10["y_train"]) == 10_000 and len(c10["y_test"]) == 2_000
    c100 = read_npz(tmp_path / "subsets" / "cifar100.npz", "cifar100")
    assert len(c100["y_train"]) == 1117 and len(c100["y_test"]) == 916
