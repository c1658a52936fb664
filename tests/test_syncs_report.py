"""gpu-smoke's cost model: syncs per epoch from timing.json to runs.csv and the report's Cost section (issue 19)."""

from __future__ import annotations

import json
import math

import pandas as pd
import torch
from test_report import tiny_project

from rlaux.experiments import load_params
from rlaux.report.collect import collect
from rlaux.report.readme import cost_section
from rlaux.syncs import EpochSyncs


def _runs(syncs: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"experiment": exp, "seed": 0, "dataset": "cifar10", "method": exp.removeprefix("c10-")}
            | {"seconds_per_epoch": s, "syncs_per_epoch": syncs.get(exp, math.nan)}
            for exp, s in (("c10-single", 2.0), ("c10-rl", 20.0))
        ]
    )


def test_cost_section_gives_syncs_per_epoch_where_they_were_counted():
    text = cost_section(_runs({"c10-single": 12.0, "c10-rl": 16.0}))
    header = next(line for line in text.splitlines() if line.startswith("| experiment"))
    assert [c.strip() for c in header.strip("|").split("|")][3:5] == ["seconds_per_epoch", "syncs_per_epoch"]
    assert "| 16 |" in text.replace("  ", " ") and "set_sync_debug_mode" in text
    assert cost_section(_runs({})) == cost_section(_runs({}).drop(columns="syncs_per_epoch"))  # CPU runs: as before
    assert "syncs_per_epoch" not in cost_section(_runs({}))


def test_collect_reads_syncs_per_epoch_from_timing_json(tmp_path, monkeypatch):
    metrics = tiny_project(tmp_path, monkeypatch)
    for exp, timing in (("c10-single", {}), ("c10-rl", {"syncs_per_epoch": 16.0})):
        run = tmp_path / "runs" / "tiny" / exp / "s0"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(metrics))
        (run / "timing.json").write_text(json.dumps({"seconds_per_epoch": 1.5, "device": "cuda"} | timing))
        pd.DataFrame({"epoch": [1, 2], "val_acc": [20, 32], "test_acc": [19, 31]}).to_csv(
            run / "history.csv", index=False
        )
    runs = collect(load_params(tmp_path / "params.yaml"), tmp_path / "results")[0].set_index("experiment")
    assert runs.loc["c10-rl", "syncs_per_epoch"] == 16.0 and math.isnan(runs.loc["c10-single", "syncs_per_epoch"])


def test_epoch_syncs_count_nothing_off_cuda():
    syncs = EpochSyncs(torch.device("cpu"))
    for _ in range(2):
        with syncs.epoch():
            torch.ones(2).sum().item()
    assert syncs.timing() == {} and syncs.per_epoch == []
