"""paper_tables/: our numbers beside the paper's, and the paper's claims under paired tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import TTestPower

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
ALL, C100_C10 = ("cifar100-20", "cifar10", "svhn"), ("cifar100-20", "cifar10")
# (claim, better, worse, margin, datasets): "{p}" is the dataset's experiment prefix, "{control}" its λ-alone control
_TEMPLATES = [
    ("RL-AUX beats single-task learning", "{p}-rl", "{p}-single", 0.0, ALL),
    ("MAXL beats single-task learning", "{p}-maxl", "{p}-single", 0.0, ALL),
    ("RL-AUX matches MAXL (RL >= MAXL - 0.5 pp)", "{p}-rl", "{p}-maxl", 0.5, ALL),
    ("RL-AUX beats the human auxiliary task", "{p}-rl", "{p}-human", 0.0, ("cifar100-20",)),
    ("Human labels beat single-task learning", "{p}-human", "{p}-single", 0.0, ("cifar100-20",)),  # the premise
    ("RL-AUX beats fixed random in-block labels", "{p}-rl", "{p}-random", 0.0, C100_C10),
    ("RL-AUX beats its placebo", "{p}-rl", "{p}-rl-placebo", 0.0, C100_C10),  # reward independent of the actions
    ("WA-RL beats RL-AUX", "{p}-wa-rl", "{p}-rl", 0.0, C100_C10),
    ("WA-MAXL beats MAXL", "{p}-wa-maxl", "{p}-maxl", 0.0, C100_C10),
    ("WA-RL's gain is more than a constant λ (WA-RL > constant-λ control)", "{p}-wa-rl", "{control}", 0.0, C100_C10),
    # is λ = 8's gain more than its loss scale? scale9 multiplies the primary loss by 1 + λ = 9
    ("Random labels at λ = 8 beat the loss-scale control", "c10-random-lam8", "c10-single-scale9", 0.0, ("cifar10",)),
]
CLAIMS = [
    Claim(text, ds, better.format(p=PREFIX[ds]), worse.format(p=PREFIX[ds], control=CONTROL.get(ds)), margin)
    for text, better, worse, margin, datasets in _TEMPLATES
    for ds in datasets
]
CLAIM_METRICS = ("test_acc_last15", "test_acc_best_val")
"""The paper's metric (last 15 epochs, as the paper selected on test) and the validation-selected one."""
HEADLINE_METRIC = "test_acc_best_val"
"""The verdicts the report leads with: selected on validation, so not biased by picking on test."""
VERDICTS = ("holds", "reversed", "inconclusive")
ALPHA, POWER = 0.05, 0.8


def _pick(spec: str, runs: pd.DataFrame) -> str | None:
    if not spec.startswith("best:"):
        return spec if (runs.experiment == spec).any() else None
    prefixes = spec[5:].split(",")
    pool = runs[runs.experiment.str.startswith(tuple(prefixes))]
    return None if pool.empty else pool.groupby("experiment")["val_acc_best"].mean().idxmax()  # chosen on validation


def mde(n: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean difference (pp) a one-sided paired t-test with n seeds detects at `power`."""
    if n < 2 or not sd > 0:
        return math.nan
    d = TTestPower().solve_power(nobs=n, alpha=alpha, power=power, alternative="larger")  # Cohen's d
    return float(d * sd)


def _bootstrap(diff: np.ndarray) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean paired difference (seeded: reruns give the same bytes)."""
    if len(diff) < 2:
        return math.nan, math.nan
    if np.all(diff == diff[0]):  # every resample has the same mean (scipy would warn and return NaN)
        return float(diff[0]), float(diff[0])
    res = stats.bootstrap((diff,), np.mean, confidence_level=0.95, method="percentile", rng=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_test(better: pd.Series, worse: pd.Series, margin: float = 0.0) -> dict:
    """Paired over seeds (the index): mean of better - worse with its 95% t- and bootstrap intervals, the one-sided
    p-value of better + margin > worse, the effect detectable at 80% power and the share of seeds that improved."""
    seeds = better.index.intersection(worse.index)
    diff = (better[seeds] - worse[seeds]).to_numpy(dtype=float)
    m, h, n = mean_ci(diff)
    shifted = diff + margin
    if n < 2 or np.all(shifted == shifted[0]):
        p = math.nan
    else:
        p = float(stats.ttest_1samp(shifted, 0.0, alternative="greater").pvalue)
    boot_low, boot_high = _bootstrap(diff)
    return {
        "n": n,
        "mean_better": better[seeds].mean(),
        "mean_worse": worse[seeds].mean(),
        "mean_difference": m,
        "ci95_low": m - h,
        "ci95_high": m + h,
        "boot95_low": boot_low,
        "boot95_high": boot_high,
        "p_value": p,
        "mde_80": mde(n, float(np.std(diff, ddof=1)) if n > 1 else math.nan),
        "prob_improvement": float(np.mean(shifted > 0)) if n else math.nan,
    }


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


def _verdict(t: dict, claim: Claim, hi: str, lo: str) -> str:
    """'holds', 'reversed' or 'inconclusive' first; a short reason after it."""
    p, gap = t["p_value"], t["mean_difference"] + claim.margin
    if t["n"] >= 2 and t["ci95_high"] + claim.margin < 0:  # also catches a zero-variance negative difference
        what = (
            f"gap {-t['mean_difference']:.2f} pp exceeds the {claim.margin} pp margin"
            if claim.margin
            else (f"{hi} is {-t['mean_difference']:.2f} pp below {lo}")
        )
        return f"reversed ({what}; the whole 95% interval is below 0)"
    if math.isnan(p):
        why = f"n = {t['n']} paired seeds" if t["n"] < 2 else "every seed gives the same difference"
        return f"inconclusive (untestable: {why})"
    if p < ALPHA:
        return "holds (p < 0.05)"
    tail = [f"MDE {t['mde_80']:.1f} pp"] if not math.isnan(t["mde_80"]) else []
    if not math.isnan(t.get("paper_difference", math.nan)):
        where = "is excluded here" if t["paper_difference_excluded"] else "lies inside our interval"
        tail.append(f"the paper's {t['paper_difference']:+.1f} pp {where}")
    lean = "right direction" if gap > 0 else "wrong direction"
    return f"inconclusive ({'; '.join([f'{lean}, p = {p:.2f}', *tail])})"


def claims(
    runs: pd.DataFrame, metric: str = "test_acc_last15", profile: str = "", paper: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One-sided paired t-test over seeds of `better + margin > worse`, with its power, one row per claim."""
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
        theirs = paper_difference(paper, hi, lo, metric)
        excluded = math.nan if math.isnan(theirs) or t["n"] < 2 else not (t["ci95_low"] <= theirs <= t["ci95_high"])
        t |= {"paper_difference": theirs, "paper_difference_excluded": excluded}
        rows.append(row | t | {"verdict": _verdict(t, c, hi, lo)})
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
            lambda t: "/".join(f"{v:g}" for v in sorted(t.dropna().unique()))
        )
        df.insert(4, "threads", df.experiment.map(threads))
    return df


def _md(df: pd.DataFrame) -> str:
    fmt = df.copy()
    for col in fmt.columns:
        if fmt[col].dtype.kind == "f":
            fmt[col] = fmt[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
        elif fmt[col].dtype.kind == "O":
            fmt[col] = fmt[col].map(lambda v: "" if not isinstance(v, str) and pd.isna(v) else v)  # True/False/NaN
    head = "| " + " | ".join(fmt.columns) + " |\n|" + "---|" * len(fmt.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in fmt.itertuples(index=False))


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
    if profile != "paper":
        intro += (
            f"**This is the `{profile}` profile**: tiny networks trained for a few epochs on small subsets. "
            "Its numbers check that the pipeline runs end to end; they are not expected to be near the "
            "paper's. Run the `paper` profile for a real comparison.\n\n"
        )
    claims_md = (
        "## Claims\n\nEach claim is tested with a one-sided paired t-test over seeds (same seed = same data "
        "split and initialisation) on test_acc_last15 and on test_acc_best_val (the `metric` column); "
        "`mean_difference` is better - worse with its 95% t-interval (`boot95_*`: percentile bootstrap of the "
        "paired differences), `mde_80` the difference detectable at 80% power, `prob_improvement` the share of "
        "seeds with better + margin > worse, `paper_difference` the paper's own better - worse on that metric. "
        "Verdict: holds (p < 0.05), reversed (the whole 95% interval of better - worse + margin is below 0) or "
        "inconclusive.\n\n" + _md(cl)
    )
    write_text(
        out_dir / "reproduction.md",
        intro + "## Paper numbers\n\n" + _md(rep) + "\n" + claims_md,
    )
    return rep, cl
