"""The statistics behind every verdict: t-intervals over seeds, the paired test of a claim, its power.

Numbers only: no markdown and no claims here (`rlaux.report.claims` applies these to the paper's claims).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import TTestPower

ALPHA, POWER = 0.05, 0.8


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
