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

from rlaux.report.collect import METRICS

REPO = Path(__file__).resolve().parents[1]
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
