"""The committed study's numbers hand over unchanged: each run's metrics.json -> results/<profile>/runs.csv ->
results/<profile>/metrics/<experiment>.json (what `dvc metrics show` prints), value by value.

The summaries are recomputed here from runs.csv with the standard library and a t quantile, not with the code
that wrote them (rlaux.report.collect, rlaux.report.stats.mean_ci).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from rlaux.evaluation import summarize
from rlaux.report.collect import METRICS

REPO = Path(__file__).resolve().parents[1]
RUNS = sorted(p.parent for p in REPO.glob("runs/**/metrics.json"))
RESULTS = sorted(p.parent for p in REPO.glob("results/*/runs.csv") if (p.parent / "metrics").is_dir())


@pytest.mark.parametrize("results", RESULTS, ids=[p.name for p in RESULTS])
def test_runs_csv_holds_each_runs_metrics_json(results):
    runs = pd.read_csv(results / "runs.csv")
    assert len(runs) > 0
    for row in runs.itertuples():
        saved = json.loads(
            (REPO / "runs" / results.name / row.experiment / f"s{row.seed}" / "metrics.json").read_text()
        )
        assert {k: getattr(row, k) for k in METRICS} == pytest.approx({k: saved[k] for k in METRICS}, rel=1e-12)
        assert row.epochs == saved["epochs"]


@pytest.mark.parametrize("results", RESULTS, ids=[p.name for p in RESULTS])
def test_dvc_metrics_are_the_summaries_of_runs_csv(results):
    """test_acc: mean test_acc_best_val (2 decimals); ci95: t(0.975, n-1) · s / √n (2 decimals, null for one
    seed); last15: mean test_acc_last15 (2 decimals); f1: mean macro F1 (4 decimals); seeds: n."""
    runs = pd.read_csv(results / "runs.csv")
    files = {p.stem for p in (results / "metrics").glob("*.json")}
    assert files == set(runs.experiment)
    for exp, group in runs.groupby("experiment"):
        acc, n = list(group.test_acc_best_val), len(group)
        half = stats.t.ppf(0.975, n - 1) * statistics.stdev(acc) / math.sqrt(n) if n > 1 else None
        assert json.loads((results / "metrics" / f"{exp}.json").read_text()) == {
            "test_acc": round(statistics.fmean(acc), 2),
            "ci95": None if half is None else round(half, 2),
            "last15": round(statistics.fmean(group.test_acc_last15), 2),
            "f1": round(statistics.fmean(group.f1), 4),
            "seeds": n,
        }, exp


def test_each_committed_runs_metrics_are_its_history_summarized():
    """metrics.json is `summarize(history.csv)` under today's rules (the best-validation tie rule included) for every
    committed run: a run whose summary was derived under another rule shows here, not in a headline."""
    assert RUNS
    moved = []
    for run in RUNS:
        rows = pd.read_csv(run / "history.csv").to_dict("records")
        saved = json.loads((run / "metrics.json").read_text())
        fresh = summarize(rows)
        if {k: saved[k] for k in fresh} != pytest.approx(fresh, rel=1e-12):
            moved.append(
                f"{run.relative_to(REPO)}: best_val_epoch {saved['best_val_epoch']} -> {fresh['best_val_epoch']}"
            )
    assert not moved, f"{len(moved)} runs: {'; '.join(moved[:5])}"
