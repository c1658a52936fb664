"""Paths inside DVC's queued copies resolve to the workspace's, for the runs and for the data stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from rlaux.experiments import load_params
from rlaux.io import workspace_path
from rlaux.report.collect import data_manifest


def test_relative_paths_resolve_to_the_workspace_also_inside_dvc_queued_copies(tmp_path):
    ws = tmp_path / "ws"
    queued = ws / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    (queued / "sub").mkdir(parents=True)
    assert workspace_path(Path("data"), queued) == ws / "data"
    assert workspace_path(Path("data"), queued / "sub") == ws / "sub" / "data"
    assert workspace_path(Path("data"), ws) == ws / "data"
    assert workspace_path(Path("/abs/data"), queued) == Path("/abs/data")


def test_data_stage_in_a_queued_copy_reads_the_workspace_data_root(tmp_path, monkeypatch, data_root):
    """A real ./data folder (not a symlink) in the workspace, git-ignored, so absent from the queued copy:
    the data stage must find it there instead of downloading into the copy (offline: failing)."""
    ws = tmp_path / "ws"
    shutil.copytree(data_root / "subsets", ws / "data" / "subsets")
    queued = ws / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    queued.mkdir(parents=True)
    params = {
        "profile": "tiny",
        "seed_pool": [0],
        "profiles": {"tiny": {"seeds": 1, "settings": {"download": False}, "datasets": {"cifar10": {}}}},
        "experiments": {"c10-single": {"dataset": "cifar10", "method": "single", "data_root": "data"}},
    }
    (queued / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(queued)
    manifest = data_manifest(load_params(Path("params.yaml")), Path("data.json"))
    assert manifest["cifar10"]["test"]["images"] == 2000 and not (queued / "data").exists()
    assert (
        json.loads(Path("data.json").read_text())["cifar10"]["train"]["images"]
        == manifest["cifar10"]["train"]["images"]
    )
