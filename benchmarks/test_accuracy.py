"""Accuracy regression thresholds for the smoke profile (thresholds.yaml, checked in as data).

Each gate is one smoke-profile run (experiment id, seed 0) whose metric (thresholds.yaml's
`metric`) must reach the stored threshold; `benchmarks/calibrate.py` writes the gates from
several seeds. The run is reused from the pipeline's runs/ when it is the same run
(`rlaux.ledger`: a smoke pipeline ran here before), else trained here with the same config.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlaux import ledger
from rlaux.config import TrainConfig
from rlaux.experiments import load_params
from rlaux.training import train

HERE = Path(__file__).parent
REPO = HERE.parent
THRESHOLDS = yaml.safe_load((HERE / "thresholds.yaml").read_text())
METRIC = THRESHOLDS["metric"]


def smoke_config(exp_id: str) -> TrainConfig:
    params = load_params(REPO / "params.yaml")
    params.profile = "smoke"
    cfg = params.run_config(exp_id, THRESHOLDS["seed"])
    assert cfg is not None, f"{exp_id} is not a smoke-profile run"
    return cfg


def measured(cfg: TrainConfig, tmp_path_factory) -> float:
    """The smoke pipeline's own run when its config matches exactly, else the same run trained here."""
    saved = ledger.verdict(REPO / cfg.out, cfg.snapshot())  # same config, data and results version
    if saved.state == "finished":
        assert saved.metrics is not None
        return saved.metrics[METRIC]
    out = tmp_path_factory.mktemp("run")
    return train(cfg.model_copy(update={"out": out}))[METRIC]


def check(value: float, threshold: float, what: str) -> None:
    if value < threshold:
        raise AssertionError(f"{what}: {METRIC} {value:.2f} fell below its threshold {threshold:.2f}")


@pytest.mark.parametrize("exp_id", sorted(THRESHOLDS["gates"]))
def test_accuracy_at_least_threshold(exp_id, tmp_path_factory):
    check(measured(smoke_config(exp_id), tmp_path_factory), THRESHOLDS["gates"][exp_id], exp_id)


def test_gates_sit_well_above_chance():
    assert all(gate >= 1.5 * 10 for gate in THRESHOLDS["gates"].values())  # CIFAR-10: chance is 10%


def test_broken_training_falls_below_its_gate(tmp_path_factory):
    """The gate is live: the single-task smoke run with its learning rate divided by 100 (a broken
    optimiser step, as a units or scheduler bug would give) must fail it."""
    cfg = smoke_config("c10-single")
    broken = cfg.model_copy(update={"lr": cfg.lr / 100})
    with pytest.raises(AssertionError, match="fell below"):
        check(measured(broken, tmp_path_factory), THRESHOLDS["gates"]["c10-single"], "c10-single, lr / 100")
