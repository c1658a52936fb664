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
    return float(x.mean()), float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)), n


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
        rows.append({"figure": p.figure, "experiment": p.experiment, "metric": p.metric, "paper": p.value,
                     "ours_mean": m, "ci95_half_width": h, "n": n, "difference": m - p.value,
                     "verdict": verdict})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Claim:
    text: str
    better: str  # experiment id expected to be higher

    worse: str  # "best:<prefix>,..." = the matching experiment with the best mean validation accuracy
    margin: float = 0.0  # better + margin > worse is tested


CLAIMS = [
    Claim("RL-AUX matches MAXL (RL >= MAXL - 0.5 pp), CIFAR-100-20", "c100-rl", "c100-maxl", margin=0.5),
    Claim("RL-AUX matches MAXL (RL >= MAXL - 0.5 pp), CIFAR-10", "c10-rl", "c10-maxl", margin=0.5),
    Claim("RL-AUX matches MAXL (RL >= MAXL - 0.5 pp), SVHN", "svhn-rl", "svhn-maxl", margin=0.5),
    Claim("RL-AUX beats the human auxiliary task", "c100-rl", "c100-human"),
    Claim("RL-AUX beats fixed random in-block labels", "c100-rl", "c100-random"),
    Claim("WA-RL beats RL-AUX, CIFAR-100-20", "c100-wa-rl", "c100-rl"),
    Claim("WA-RL beats RL-AUX, CIFAR-10", "c10-wa-rl", "c10-rl"),
    Claim("WA-MAXL beats MAXL, CIFAR-100-20", "c100-wa-maxl", "c100-maxl"),
    Claim("WA-MAXL beats MAXL, CIFAR-10", "c10-wa-maxl", "c10-maxl"),
    Claim("WA-RL's gain is more than a constant λ (WA-RL > best constant-λ control)", "c100-wa-rl", "best:c100-human-lam,c100-random-lam"),
]


def _pick(spec: str, runs: pd.DataFrame) -> str | None:
    if not spec.startswith("best:"):
        return spec if (runs.experiment == spec).any() else None
    prefixes = spec[5:].split(",")
    pool = runs[runs.experiment.str.startswith(tuple(prefixes))]
    return None if pool.empty else pool.groupby("experiment")["val_acc_best"].mean().idxmax()  # chosen on validation


def claims(runs: pd.DataFrame, metric: str = "test_acc_last15") -> pd.DataFrame:
    """One-sided paired t-test over seeds of `better + margin > worse`, in plain words."""
    rows = []
    for c in CLAIMS:
        hi, lo = (_pick(s, runs) if len(runs) else None for s in (c.better, c.worse))
        row = {"claim": c.text, "better": hi or c.better, "worse": lo or c.worse}
        if hi is None or lo is None:
            rows.append(row | {"n": 0, "verdict": "not run in this profile"})
            continue
        a = runs[runs.experiment == hi].set_index("seed")[metric]
        b = runs[runs.experiment == lo].set_index("seed")[metric]
        seeds = a.index.intersection(b.index)
        diff = (a[seeds] - b[seeds] + c.margin).to_numpy()
        row |= {"n": len(seeds), "mean_better": a[seeds].mean(), "mean_worse": b[seeds].mean(), "mean_difference": diff.mean() - c.margin}
        if len(seeds) < 2 or np.all(diff == diff[0]):
            p = math.nan
        else:
            p = float(stats.ttest_1samp(diff, 0.0, alternative="greater").pvalue)
        row["p_value"] = p
        if math.isnan(p):
            verdict = f"untestable with n={len(seeds)} paired seeds"
        elif p < 0.05:
            verdict = "holds (p < 0.05)"
        elif diff.mean() > 0:
            verdict = f"not shown: right direction but p = {p:.2f} with n = {len(seeds)}"
        else:
            verdict = f"does not hold here: {hi} is {-(diff.mean() - c.margin):.2f} pp below {lo}" if not c.margin else \
                f"does not hold here: gap {-(diff.mean() - c.margin):.2f} pp exceeds the {c.margin} pp margin"
        rows.append(row | {"verdict": verdict})
    return pd.DataFrame(rows)


def _md(df: pd.DataFrame) -> str:
    fmt = df.copy()
    for col in fmt.columns:
        if fmt[col].dtype.kind == "f":
            fmt[col] = fmt[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    head = "| " + " | ".join(fmt.columns) + " |\n|" + "---|" * len(fmt.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in fmt.itertuples(index=False))


def write_tables(paper: pd.DataFrame, runs: pd.DataFrame, profile: str, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rep, cl = reproduction(paper, runs), claims(runs)
    write_text(out_dir / "reproduction.csv", rep.to_csv(index=False))
    write_text(out_dir / "claims.csv", cl.to_csv(index=False))
    n_seeds = int(runs.groupby("experiment").size().max()) if len(runs) else 0
    intro = (f"# RL-AUX reproduction: profile `{profile}`\n\n"
             f"Ours: mean over {n_seeds} seeds with a two-sided 95% t-interval (± half-width). Accuracies are the "
             "paper's metric, mean test accuracy over the last min(15, epochs) epochs, in percent; precision, "
             "recall and F1 are macro averages at the best-validation epoch. Verdict: whether the paper's number "
             "lies inside our interval. Our runs train on 90% of the training split (the rest is the validation "
             "split the paper lacked), a small bias against us.\n\n")
    if profile != "paper":
        intro += (f"**This is the `{profile}` profile**: tiny networks trained for a few epochs on small subsets. "
                  "Its numbers check that the pipeline runs end to end; they are not expected to be near the "
                  "paper's. Run the `paper` profile for a real comparison.\n\n")
    claims_md = ("## Claims\n\nEach claim is tested with a one-sided paired t-test over seeds (same seed = same data "
                 "split and initialisation) on test_acc_last15.\n\n" + _md(cl))
    write_text(out_dir / "reproduction.md", intro + "## Paper numbers\n\n" + _md(rep) + "\n" + claims_md)
    return rep, cl
