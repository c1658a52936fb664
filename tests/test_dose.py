"""The oracle dose-response table and figure from synthetic runs, numbers by hand (issue 26)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rlaux.errors import ConfigError
from rlaux.experiments import Params
from rlaux.report.dose import dose_table, nominal_share, write_dose


def test_nominal_share_by_hand():
    """ψ = 5, B = 100: a uniform policy's batch agreement has variance 0.2 · 0.8 / 100 = 0.0016; noise σ = 0.04
    adds 0.0016, so the share is 1/2; no noise: 1."""
    assert nominal_share(0.04, psi=5, batch_size=100) == pytest.approx(0.5)
    assert nominal_share(0.0, psi=5, batch_size=100) == 1.0


def _params() -> Params:
    oracle = {"dataset": "cifar100-20", "method": "rl"}
    return Params.model_validate(
        {
            "profile": "oracle",
            "seed_pool": [0, 1],
            "profiles": {"oracle": {"seeds": 2, "settings": {"epochs": 4}, "datasets": {"cifar100-20": {}}}},
            "experiments": {
                "o-clean": oracle | {"rl": {"reward": "oracle"}},
                "o-noisy": oracle | {"rl": {"reward": "oracle", "oracle_noise": 0.04, "credit": "batch"}},
                "c100-single": {"dataset": "cifar100-20", "method": "single"},
            },
        }
    )


def _write(params: Params, agreement: dict[str, list[float]]) -> None:
    for exp_id, seed, cfg in params.active_runs():
        run = params.run_dir(exp_id, seed)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text("{}")
        (run / "config.json").write_text(json.dumps(cfg.snapshot()))
        column = {"rl/fine_agreement": [a + seed / 100 for a in agreement[exp_id]]} if exp_id in agreement else {}
        pd.DataFrame({"epoch": [1, 2, 3, 4]} | column).to_csv(run / "history.csv", index=False)


def test_dose_table_averages_the_last_three_epochs_of_each_oracle_run(tmp_path, monkeypatch):
    """o-clean seed 0: agreement 0.2, 0.3, 0.4, 0.5 -> last 3 mean 0.4 (seed 1: +0.01 each, 0.41); o-noisy: flat
    0.2 -> 0.2 and 0.21; the single-task run is not an oracle run and is left out."""
    monkeypatch.chdir(tmp_path)
    params = _params()
    _write(params, {"o-clean": [0.2, 0.3, 0.4, 0.5], "o-noisy": [0.2, 0.2, 0.2, 0.2]})
    table = dose_table(params, "oracle").set_index(["experiment", "seed"])
    assert len(table) == 4
    assert table.loc[("o-clean", 0), "fine_agreement"] == pytest.approx(0.4)
    assert table.loc[("o-clean", 1), "fine_agreement"] == pytest.approx(0.41)
    assert table.loc[("o-clean", 0), "first_epoch_agreement"] == pytest.approx(0.2)
    assert table.loc[("o-noisy", 0), "credit"] == "batch" and table.loc[("o-clean", 0), "credit"] == "paper"
    assert table.loc[("o-noisy", 0), "share"] == pytest.approx(0.5) and table.loc[("o-clean", 0), "share"] == 1.0
    write_dose(params, "oracle", tmp_path / "out")
    text = (tmp_path / "out" / "dose_response.md").read_text()
    assert "| paper | 1 | 0.405 |" in text and (tmp_path / "out" / "dose_response.png").stat().st_size > 0


def test_unfinished_oracle_runs_are_left_out_and_counted_and_an_unknown_profile_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _params()
    _write(params, {"o-clean": [0.2, 0.3, 0.4, 0.5], "o-noisy": [0.2, 0.2, 0.2, 0.2]})
    for seed in (0, 1):
        (params.run_dir("o-noisy", seed) / "metrics.json").unlink()
    table = dose_table(params, "oracle")
    assert list(table.experiment) == ["o-clean", "o-clean"]
    write_dose(params, "oracle", tmp_path / "out")
    text = (tmp_path / "out" / "dose_response.md").read_text()
    assert "**2 of 4 oracle runs have not finished** and are not shown (`rlaux dispatch --profile oracle`)" in text
    write_dose(
        params.model_copy(update={"experiments": {"o-clean": params.experiments["o-clean"]}}), "oracle", tmp_path
    )
    assert "have not finished" not in (tmp_path / "dose_response.md").read_text()
    with pytest.raises(ConfigError, match="profile 'nope' unknown"):
        write_dose(params, "nope", Path(tmp_path))
