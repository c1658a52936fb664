"""The paper's claims as data, each tested on paired seeds (`rlaux.report.stats`) with a verdict.

The claims and which datasets test them are declared in report.yaml (`rlaux.report.spec`); a claim names its
experiments by the dataset's prefix (`rlaux.config.DATASET_FACTS`), so a new dataset gets its claims from its entry
there without touching this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rlaux.report.markdown import MAX_PP, mde_cell
from rlaux.report.spec import load as load_spec
from rlaux.report.stats import ALPHA, holm, mde, paired_test


@dataclass(frozen=True)
class Claim:
    text: str
    dataset: str
    better: str  # experiment id expected to be higher
    worse: str  # an id, or "best:<prefix>,..." = the matching experiment with the best mean validation accuracy
    margin: float = 0.0  # better + margin > worse is tested


def claim_list(trained: Iterable[str] = ()) -> list[Claim]:
    """One Claim per claim of report.yaml and dataset that tests it, in the spec's order: every dataset shown
    always (the paper's), and those shown only where trained (the suite's controls) when in `trained`."""
    spec, names = load_spec(), set(trained)
    return [
        Claim(c.text, ds, *spec.claim_arms(ds, key), c.margin)
        for key, c in spec.claims.items()
        for ds, d in spec.datasets.items()
        if key in d.claims and spec.shown(ds, names)
    ]


def trained_datasets(runs: pd.DataFrame) -> set[str]:
    """The datasets a profile's runs trained (runs.csv's `dataset` column)."""
    return set(runs.dataset.dropna()) if "dataset" in runs else set()


CLAIM_METRICS = ("test_acc_last15", "test_acc_best_val")
"""The paper's metric (mean test accuracy over the last 15 epochs, no selection) and the validation-selected one."""
HEADLINE_METRIC = "test_acc_best_val"
"""The verdicts the report leads with: selected on validation, so not biased by picking on test."""
VERDICTS = ("holds", "reversed", "inconclusive")


def pick(spec: str, runs: pd.DataFrame) -> str | None:
    if not spec.startswith("best:"):
        return spec if (runs.experiment == spec).any() else None
    prefixes = spec[5:].split(",")
    pool = runs[runs.experiment.str.startswith(tuple(prefixes))]
    return None if pool.empty else pool.groupby("experiment")["val_acc_best"].mean().idxmax()  # chosen on validation


def paper_difference(paper: pd.DataFrame | None, better: str, worse: str, metric: str) -> float:
    """The paper's own better - worse on `metric`, preferring a figure that shows both; NaN if it lacks either."""
    if paper is None or paper.empty:
        return math.nan
    rows = paper[paper.metric == metric]
    hi, lo = rows[rows.experiment == better], rows[rows.experiment == worse]
    if hi.empty or lo.empty:
        return math.nan
    both = sorted(set(hi.figure) & set(lo.figure))
    if both:
        hi, lo = hi[hi.figure == both[0]], lo[lo.figure == both[0]]
    return round(float(hi.value.iloc[0] - lo.value.iloc[0]), 6)  # the paper prints 2-4 decimals


def verdict(t: dict, claim: Claim, hi: str, lo: str, family: int) -> str:
    """'holds', 'reversed' or 'inconclusive' first, decided by the Holm-adjusted two-sided p across the `family`
    tested claims of the metric; a short reason after it, saying when the unadjusted test would have decided."""
    p, p_holm, gap = t["p_value"], t["p_holm"], t["mean_difference"] + claim.margin
    below = t["n"] >= 2 and t["ci95_high"] + claim.margin < 0
    if math.isnan(t["p_two_sided"]):
        if below:  # every seed gives the same negative difference: no variance to test, the sign is certain
            return f"reversed ({hi} is {-t['mean_difference']:.2f} pp below {lo} in every seed)"
        why = f"n = {t['n']} paired seeds" if t["n"] < 2 else "every seed gives the same difference"
        return f"inconclusive (untestable: {why})"
    adjusted = f"Holm-adjusted p = {p_holm:.2g} across {family} claim{'' if family == 1 else 's'}"
    if p_holm < ALPHA:
        if gap > 0:
            return f"holds ({adjusted})"
        what = (
            f"gap {-t['mean_difference']:.2f} pp exceeds the {claim.margin} pp margin"
            if claim.margin
            else f"{hi} is {-t['mean_difference']:.2f} pp below {lo}"
        )
        return f"reversed ({what}; {adjusted})"
    tail = [f"{'right' if gap > 0 else 'wrong'} direction", adjusted]
    if p < ALPHA:
        tail.append(f"holds before adjustment (one-sided p = {p:.2g}), not after")
    elif below:
        tail.append("reversed before adjustment (the whole 95% interval is below 0), not after")
    if t["mde_80"] > MAX_PP:  # no difference two accuracies can have: the seeds could detect nothing
        tail.append(f"no difference under {MAX_PP:g} pp was detectable at 80% power with {t['n']} seeds")
    elif not math.isnan(t["mde_80"]):
        tail.append(f"MDE {mde_cell(t['mde_80'])} pp")
    if not math.isnan(t["paper_difference"]):
        where = "is excluded here" if t["paper_difference_excluded"] else "lies inside our interval"
        tail.append(f"the paper's {t['paper_difference']:+.1f} pp {where}")
    return f"inconclusive ({'; '.join(tail)})"


def claims(
    runs: pd.DataFrame, metric: str = "test_acc_last15", profile: str = "", paper: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Paired t-tests over seeds of `better + margin > worse`, one row per claim, with verdicts family-wise
    adjusted (Holm) across the claims tested on this metric, and the effect the family could detect."""
    rows: list[dict[str, Any]] = []
    tests: list[tuple[dict[str, Any], Claim, str, str]] = []
    for c in claim_list(trained_datasets(runs)):
        hi, lo = (pick(s, runs) if len(runs) else None for s in (c.better, c.worse))
        row: dict[str, Any] = {
            "claim": c.text,
            "dataset": c.dataset,
            "profile": profile,
            "metric": metric,
            "better": hi or c.better,
            "worse": lo or c.worse,
        }
        rows.append(row)
        if hi is None or lo is None:
            row |= {"n": 0, "verdict": "not run in this profile"}
            continue
        t = paired_test(
            runs[runs.experiment == hi].set_index("seed")[metric],
            runs[runs.experiment == lo].set_index("seed")[metric],
            c.margin,
        )
        theirs = paper_difference(paper, hi, lo, metric)
        excluded = math.nan if math.isnan(theirs) or t["n"] < 2 else not (t["ci95_low"] <= theirs <= t["ci95_high"])
        row |= t | {"paper_difference": theirs, "paper_difference_excluded": excluded, "p_holm": math.nan}
        tests.append((row, c, hi, lo))
    family = [row for row, *_ in tests if not math.isnan(row["p_two_sided"])]
    for row, p_holm in zip(family, holm([row["p_two_sided"] for row in family]), strict=True):
        row["p_holm"] = p_holm
    for row, c, hi, lo in tests:
        row["family_size"] = len(family)
        row["mde_80"] = mde(row["n"], row["sd_difference"], alpha=ALPHA / max(len(family), 1))
        row["verdict"] = verdict(row, c, hi, lo, len(family))
    return pd.DataFrame(rows)


def all_claims(runs: pd.DataFrame, profile: str = "", paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claims on every metric of CLAIM_METRICS, stacked (the `metric` column tells them apart)."""
    return pd.concat([claims(runs, m, profile, paper) for m in CLAIM_METRICS], ignore_index=True)


def last15_name(epochs) -> str:
    """What test_acc_last15 is for these runs: the paper's metric only when every run has 15 epochs or more."""
    e = sorted({int(x) for x in pd.Series(epochs, dtype=float).dropna()})
    if not e or e[0] >= 15:
        return "last 15 epochs (paper's metric)"
    if e[-1] > 15:
        return "last min(15, epochs) epochs"
    return f"mean over all {e[0] if len(e) == 1 else f'{e[0]}–{e[-1]}'} epochs"


def run_epochs(runs: pd.DataFrame, curves: pd.DataFrame | None = None) -> pd.Series:
    """Epochs per run: runs.csv's `epochs`, else the last epoch in curves.csv; empty when neither says."""
    if "epochs" in runs:
        return runs["epochs"].dropna()
    if curves is not None and len(curves) and "epoch" in curves:
        return curves.groupby("experiment")["epoch"].max()
    return pd.Series(dtype=float)
