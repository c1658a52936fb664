"""paper_tables/: our numbers beside the paper's, and the paper's claims under paired tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rlaux.io import write_text


def mean_ci(values) -> tuple[float, float, int]:
    """Mean and half-width of the two-sided 95% t-interval over seeds (nan when n < 2)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n < 2:
        return float(x.mean()), math.nan, 1
    return (
        float(x.mean()),
        float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)),
        n,
    )


def t_interval(values) -> tuple[float, float]:
    """(low, high) of the 95% t-interval: seaborn's `errorbar=` callable."""
    m, h, _ = mean_ci(values)
    return (m, m) if math.isnan(h) else (m - h, m + h)


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
                "figure": p.figure,
                "experiment": p.experiment,
                "metric": p.metric,
                "paper": p.value,
                "ours_mean": m,
                "ci95_half_width": h,
                "n": n,
                "difference": m - p.value,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Claim:
    text: str
    dataset: str
    better: str  # experiment id expected to be higher
    worse: str  # an id, or "best:<prefix>,..." = the matching experiment with the best mean validation accuracy
    margin: float = 0.0  # better + margin > worse is tested


PREFIX = {"cifar100-20": "c100", "cifar10": "c10", "svhn": "svhn"}
CONTROL = {
    "cifar100-20": "best:c100-human-lam,c100-random-lam",  # picked on validation accuracy
    "cifar10": "c10-random-lam8",
}  # one constant λ, fixed a priori (params.yaml)
# (claim, better, worse, margin, datasets): "{p}" is the dataset's experiment prefix, "{control}" its λ-alone control
_TEMPLATES = [
    (
        "RL-AUX beats single-task learning",
        "{p}-rl",
        "{p}-single",
        0.0,
        ("cifar100-20", "cifar10", "svhn"),
    ),
    (
        "MAXL beats single-task learning",
        "{p}-maxl",
        "{p}-single",
        0.0,
        ("cifar100-20", "cifar10", "svhn"),
    ),
    (
        "RL-AUX matches MAXL (RL >= MAXL - 0.5 pp)",
        "{p}-rl",
        "{p}-maxl",
        0.5,
        ("cifar100-20", "cifar10", "svhn"),
    ),
    (
        "RL-AUX beats the human auxiliary task",
        "{p}-rl",
        "{p}-human",
        0.0,
        ("cifar100-20",),
    ),
    (
        "RL-AUX beats fixed random in-block labels",
        "{p}-rl",
        "{p}-random",
        0.0,
        ("cifar100-20", "cifar10"),
    ),
    ("WA-RL beats RL-AUX", "{p}-wa-rl", "{p}-rl", 0.0, ("cifar100-20", "cifar10")),
    ("WA-MAXL beats MAXL", "{p}-wa-maxl", "{p}-maxl", 0.0, ("cifar100-20", "cifar10")),
    (
        "WA-RL's gain is more than a constant λ (WA-RL > constant-λ control)",
        "{p}-wa-rl",
        "{control}",
        0.0,
        ("cifar100-20", "cifar10"),
    ),
]
CLAIMS = [
    Claim(
        text,
        ds,
        better.format(p=PREFIX[ds]),
        worse.format(p=PREFIX[ds], control=CONTROL.get(ds)),
        margin,
    )
    for text, better, worse, margin, datasets in _TEMPLATES
    for ds in datasets
]
CLAIM_METRICS = ("test_acc_last15", "test_acc_best_val")
"""The paper's metric (last 15 epochs, as the paper selected on test) and the validation-selected one."""


def _pick(spec: str, runs: pd.DataFrame) -> str | None:
    if not spec.startswith("best:"):
        return spec if (runs.experiment == spec).any() else None
    prefixes = spec[5:].split(",")
    pool = runs[runs.experiment.str.startswith(tuple(prefixes))]
    return None if pool.empty else pool.groupby("experiment")["val_acc_best"].mean().idxmax()  # chosen on validation


def paired_test(better: pd.Series, worse: pd.Series, margin: float = 0.0) -> dict:
    """Paired over seeds (the index): mean of better - worse, its 95% t-interval, and the one-sided
    p-value of better + margin > worse."""
    seeds = better.index.intersection(worse.index)
    diff = (better[seeds] - worse[seeds]).to_numpy(dtype=float)
    m, h, n = mean_ci(diff)
    shifted = diff + margin
    if n < 2 or np.all(shifted == shifted[0]):
        p = math.nan
    else:
        p = float(stats.ttest_1samp(shifted, 0.0, alternative="greater").pvalue)
    return {
        "n": n,
        "mean_better": better[seeds].mean(),
        "mean_worse": worse[seeds].mean(),
        "mean_difference": m,
        "ci95_low": m - h,
        "ci95_high": m + h,
        "p_value": p,
    }


def _verdict(t: dict, claim: Claim, hi: str, lo: str) -> str:
    p, gap = t["p_value"], t["mean_difference"] + claim.margin
    if math.isnan(p):
        return f"untestable with n={t['n']} paired seeds"
    if p < 0.05:
        return "holds (p < 0.05)"
    if gap > 0:
        return f"not shown: right direction but p = {p:.2f} with n = {t['n']}"
    if claim.margin:
        return f"does not hold here: gap {-t['mean_difference']:.2f} pp exceeds the {claim.margin} pp margin"
    return f"does not hold here: {hi} is {-t['mean_difference']:.2f} pp below {lo}"


def claims(runs: pd.DataFrame, metric: str = "test_acc_last15", profile: str = "") -> pd.DataFrame:
    """One-sided paired t-test over seeds of `better + margin > worse`, in plain words, one row per claim."""
    rows = []
    for c in CLAIMS:
        hi, lo = (_pick(s, runs) if len(runs) else None for s in (c.better, c.worse))
        row = {
            "claim": c.text,
            "dataset": c.dataset,
            "profile": profile,
            "metric": metric,
            "better": hi or c.better,
            "worse": lo or c.worse,
        }
        if hi is None or lo is None:
            rows.append(row | {"n": 0, "verdict": "not run in this profile"})
            continue
        t = paired_test(
            runs[runs.experiment == hi].set_index("seed")[metric],
            runs[runs.experiment == lo].set_index("seed")[metric],
            c.margin,
        )
        rows.append(row | t | {"verdict": _verdict(t, c, hi, lo)})
    return pd.DataFrame(rows)


def all_claims(runs: pd.DataFrame, profile: str = "") -> pd.DataFrame:
    """The claims on every metric of CLAIM_METRICS, stacked (the `metric` column tells them apart)."""
    return pd.concat([claims(runs, m, profile) for m in CLAIM_METRICS], ignore_index=True)


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean seconds per epoch per experiment, and its ratio to the same dataset's single-task experiment."""
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
            seconds_per_epoch=("seconds_per_epoch", "mean"),
            n=("seconds_per_epoch", "size"),
        )
        .reset_index()
    )
    single = df[df.method == "single"].groupby("dataset")["seconds_per_epoch"].first()
    df["ratio_to_single"] = df.seconds_per_epoch / df.dataset.map(single)
    return df


def _md(df: pd.DataFrame) -> str:
    fmt = df.copy()
    for col in fmt.columns:
        if fmt[col].dtype.kind == "f":
            fmt[col] = fmt[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    head = "| " + " | ".join(fmt.columns) + " |\n|" + "---|" * len(fmt.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in fmt.itertuples(index=False))


def write_tables(
    paper: pd.DataFrame, runs: pd.DataFrame, profile: str, out_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rep, cl = reproduction(paper, runs), all_claims(runs, profile)
    write_text(out_dir / "reproduction.csv", rep.to_csv(index=False))
    write_text(out_dir / "claims.csv", cl.to_csv(index=False))
    n_seeds = int(runs.groupby("experiment").size().max()) if len(runs) else 0
    intro = (
        f"# RL-AUX reproduction: profile `{profile}`\n\n"
        f"Ours: mean over {n_seeds} seeds with a two-sided 95% t-interval (± half-width). Accuracies are the "
        "paper's metric, mean test accuracy over the last min(15, epochs) epochs, in percent; precision, "
        "recall and F1 are macro averages at the best-validation epoch. Verdict: whether the paper's number "
        "lies inside our interval. Our runs train on 90% of the training split (the rest is the validation "
        "split the paper lacked), a small bias against us.\n\n"
    )
    if profile != "paper":
        intro += (
            f"**This is the `{profile}` profile**: tiny networks trained for a few epochs on small subsets. "
            "Its numbers check that the pipeline runs end to end; they are not expected to be near the "
            "paper's. Run the `paper` profile for a real comparison.\n\n"
        )
    claims_md = (
        "## Claims\n\nEach claim is tested with a one-sided paired t-test over seeds (same seed = same data "
        "split and initialisation) on test_acc_last15 and on test_acc_best_val (the `metric` column); "
        "`mean_difference` is better - worse with its 95% t-interval.\n\n" + _md(cl)
    )
    write_text(
        out_dir / "reproduction.md",
        intro + "## Paper numbers\n\n" + _md(rep) + "\n" + claims_md,
    )
    return rep, cl
