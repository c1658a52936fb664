"""paper_tables/: our numbers beside the paper's (reproduction.md, .csv), the claims (claims.csv) and the cost."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from rlaux.io import write_text
from rlaux.report.claims import all_claims, last15_name, run_epochs
from rlaux.report.markdown import md, mde_cell
from rlaux.report.stats import linear_trend, mean_ci


def reproduction(paper: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for p in paper.itertuples():
        ours = runs.loc[runs.experiment == p.experiment, p.metric] if len(runs) else pd.Series(dtype=float)
        m, h, n = mean_ci(ours)
        if n == 0:
            verdict = "not run in this profile"
        elif n < 2:
            verdict = "no interval (n < 2)"
        else:
            verdict = "inside" if abs(p.value - m) <= h else "outside"
        rows.append(
            {
                "figure": ""
                if pd.isna(p.figure)
                else f"{p.figure:g}",  # empty: the authors' evidence outside the paper
                "experiment": p.experiment,
                "metric": p.metric,
                "paper": p.value,
                "ours_mean": m,
                "ci95_half_width": h,
                "n": n,
                "difference": m - p.value,
                "verdict": verdict,
                "source": getattr(p, "source", ""),
            }
        )
    return pd.DataFrame(rows)


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Median over seeds of seconds per epoch per experiment (a run slowed by other work on the machine does not
    move it), and its ratio to the same dataset's single-task experiment."""
    if runs.empty or "seconds_per_epoch" not in runs:
        return pd.DataFrame(
            columns=[
                "experiment",
                "dataset",
                "method",
                "seconds_per_epoch",
                "n",
                "ratio_to_single",
            ]
        )
    df = (
        runs.groupby("experiment", sort=False)
        .agg(
            dataset=("dataset", "first"),
            method=("method", "first"),
            seconds_per_epoch=("seconds_per_epoch", "median"),
            n=("seconds_per_epoch", "size"),
        )
        .reset_index()
    )
    single = df[df.method == "single"].groupby("dataset")["seconds_per_epoch"].first()
    df["ratio_to_single"] = df.seconds_per_epoch / df.dataset.map(single)
    if "threads" in runs and runs.threads.notna().any():  # a run at 1 thread beside one at 2 is not a method's cost
        threads = runs.groupby("experiment", sort=False).threads.agg(
            lambda t: (
                "not recorded" if t.isna().any() else "/".join(f"{v:g}" for v in sorted(t.unique()))
            )  # "1/2": its seeds ran at both
        )
        df.insert(4, "threads", df.experiment.map(threads))
        base = df[df.method == "single"].groupby("dataset")["threads"].first()
        comparable = (df.threads == df.dataset.map(base)) & ~df.threads.str.contains("/|not", regex=True)
        df["ratio_to_single"] = df.ratio_to_single.where(comparable)  # only at one known thread count
    return df


SETTLING_WINDOW = 15
"""Epochs whose slope says whether test_acc_last15 averages a settled network (the paper's last 15 of 80-200)."""


def settling(curves: pd.DataFrame, window: int = SETTLING_WINDOW) -> pd.DataFrame:
    """Per experiment: each run's least-squares slope of test accuracy per epoch over its last `window` epochs (the
    epochs test_acc_last15 averages), then the mean over seeds with its 95% t-interval. An interval above zero: the
    networks were still learning in the window the metric averages, so a longer schedule would move the numbers."""
    rows = []
    for exp, g in curves.groupby("experiment", sort=False) if len(curves) else ():
        last = g.sort_values("epoch").groupby("seed").tail(window)
        slopes = [linear_trend(r.epoch, r.test_acc)["slope"] for _, r in last.groupby("seed")]
        m, h, n = mean_ci([v for v in slopes if not math.isnan(v)])
        low, high = m - h, m + h
        trend = (
            "still rising" if low > 0 else "falling" if high < 0 else "no trend detected" if n >= 2 else "untestable"
        )
        rows.append(
            {
                "experiment": exp,
                "epochs": f"{int(last.epoch.min())}–{int(last.epoch.max())}",
                "slope_pp_per_epoch": m,
                "ci95_low": low,
                "ci95_high": high,
                "n": n,
                "trend": trend,
            }
        )
    return pd.DataFrame(rows)


def scale_note(profile: str) -> str:
    """What a profile's numbers can be compared with: the paper's only at the paper's scale."""
    if profile == "paper":
        return ""
    return (
        f"**The `{profile}` profile** trains reduced networks on reduced data for few epochs: its numbers test the "
        "paper's claims at this scale; they are not expected to match the paper's absolute numbers (the `paper` "
        "profile runs the paper's scale on GPUs).\n\n"
    )


def write_tables(
    paper: pd.DataFrame, runs: pd.DataFrame, profile: str, out_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rep, cl = reproduction(paper, runs), all_claims(runs, profile, paper)
    write_text(out_dir / "reproduction.csv", rep.to_csv(index=False))
    write_text(out_dir / "claims.csv", cl.to_csv(index=False))
    n_seeds = int(runs.groupby("experiment").size().max()) if len(runs) else 0
    name = last15_name(run_epochs(runs))
    metric = (
        "the paper's metric, mean test accuracy over the last min(15, epochs) epochs"
        if name.startswith("last")
        else f"test_acc_last15, here the {name}, early epochs included (the paper's metric averages the last 15 "
        "of 80-200 epochs)"
    )
    intro = (
        f"# RL-AUX reproduction: profile `{profile}`\n\n"
        f"Ours: mean over {n_seeds} seeds with a two-sided 95% t-interval (± half-width). Accuracies are "
        f"{metric}, in percent; precision, "
        "recall and F1 are macro averages at the best-validation epoch. Verdict: whether the paper's number "
        "lies inside our interval. Our runs train on 90% of the training split (the rest is the validation "
        "split the paper lacked), a small bias against us.\n\n"
    )
    intro += scale_note(profile)
    claims_md = (
        "## Claims\n\nEvery claim on both metrics (the `metric` column), as claims.csv holds them; how each is "
        "tested and what its columns and verdicts mean: README.md, section Claims.\n\n"
        + md(cl.assign(mde_80=cl.mde_80.map(lambda v: mde_cell(v, ".4g"))) if "mde_80" in cl else cl)
    )
    write_text(
        out_dir / "reproduction.md",
        intro + "## Paper numbers\n\n" + md(rep) + "\n" + claims_md,
    )
    return rep, cl
