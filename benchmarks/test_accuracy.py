"""Accuracy regression thresholds for the smoke profile (thresholds.yaml, checked in as data).

Each entry is one smoke-profile run (experiment id, seed 0) whose `test_acc_last15` must reach
the stored threshold. The run is reused from the pipeline's runs/ when its config matches
exactly (CI runs the smoke pipeline first), else trained here with the same config.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rlaux.experiments import load_params
from rlaux.training import train

HERE = Path(__file__).parent
REPO = HERE.parent
THRESHOLDS = yaml.safe_load((HERE / "thresholds.yaml").read_text())


def smoke_params():
    params = load_params(REPO / "params.yaml")
    params.profile = "smoke"
    return params


def measured(exp_id: str, tmp_path_factory) -> float:
    params = smoke_params()
    cfg = params.run_config(exp_id, THRESHOLDS["seed"])
    assert cfg is not None, f"{exp_id} is not a smoke-profile run"
    pipeline_run = REPO / cfg.out / "metrics.json"
    if pipeline_run.is_file():
        saved = json.loads(pipeline_run.read_text())
        if saved.get("config", {}) == cfg.snapshot() | {"data_root": saved.get("config", {}).get("data_root")}:
            return saved["test_acc_last15"]
    out = tmp_path_factory.mktemp(exp_id)
    return train(cfg.model_copy(update={"out": out}))["test_acc_last15"]


def check(value: float, threshold: float, what: str) -> None:
    if value < threshold:
        raise AssertionError(f"{what}: test_acc_last15 {value:.2f} fell below its threshold {threshold:.2f}")


@pytest.mark.parametrize("exp_id", sorted(THRESHOLDS["test_acc_last15"]))
def test_accuracy_at_least_threshold(exp_id, tmp_path_factory):
    value = measured(exp_id, tmp_path_factory)
    check(value, THRESHOLDS["test_acc_last15"][exp_id], exp_id)
