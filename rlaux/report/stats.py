"""The statistics behind every verdict: t-intervals over seeds, the paired test of a claim, its power.

Numbers only: no markdown and no claims here (`rlaux.report.claims` applies these to the paper's claims).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
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


def mde(n: int, sd: float, alpha: float = ALPHA, power: float = POWER, one_sided: bool = False) -> float:
    """Smallest true mean difference (pp) a paired t-test (two-sided, or one-sided where a claim was registered
    so) at level `alpha` detects with n seeds at `power`."""
    if n < 2 or not sd > 0:
        return math.nan
    alternative = "larger" if one_sided else "two-sided"
    d = TTestPower().solve_power(nobs=n, alpha=alpha, power=power, alternative=alternative)  # Cohen's d
    return float(d * sd)


def paired_test(better: pd.Series, worse: pd.Series, margin: float = 0.0) -> dict:
    """Paired over seeds (the index): mean of better - worse with its 95% t-interval, the one-sided p-value of
    better + margin > worse, the two-sided one (what a family's adjustment takes), the differences' standard
    deviation and the share of seeds that improved. At n = 5 only the t-interval is honest about its width:
    a percentile bootstrap of five values is too narrow (tests/test_report.py measures both)."""
    seeds = better.index.intersection(worse.index)
    diff = (better[seeds] - worse[seeds]).to_numpy(dtype=float)
    m, h, n = mean_ci(diff)
    shifted = diff + margin
    if n < 2 or np.all(shifted == shifted[0]):
        p = p_two = math.nan
    else:
        p = float(stats.ttest_1samp(shifted, 0.0, alternative="greater").pvalue)
        p_two = float(stats.ttest_1samp(shifted, 0.0).pvalue)
    return {
        "n": n,
        "mean_better": better[seeds].mean(),
        "mean_worse": worse[seeds].mean(),
        "mean_difference": m,
        "ci95_low": m - h,
        "ci95_high": m + h,
        "p_value": p,
        "p_two_sided": p_two,
        "sd_difference": float(np.std(diff, ddof=1)) if n > 1 else math.nan,
        "prob_improvement": float(np.mean(shifted > 0)) if n else math.nan,
    }


def holm(p_values: list[float], alpha: float = ALPHA) -> list[float]:
    """Holm's step-down adjustment (statsmodels): family-wise error at `alpha` across the p-values given."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(p_values, alpha=alpha, method="holm")[1]]


def two_way_components(label_sd, batch_sd, label_share, rows: int, cols: int) -> tuple[float, float, float]:
    """Method-of-moments variance components of rows x cols layouts of rewards without replication (label sets x
    evaluation batches), one per epoch, from what the probe logs per epoch: the standard deviations of the row means
    and of the column means and the rows' share of the total sum of squares. Returns (label, batch, residual),
    pooled over the epochs given: each mean square is averaged over them first and the components are clipped at
    zero once, after pooling (clipping each epoch's estimate first would bias a small component upward). The
    residual (interaction and noise, inseparable without replication) is subtracted from each effect's mean square
    before it is counted, so a label effect is not credited with noise, as a sum-of-squares share is."""
    label_sd, batch_sd, label_share = (np.asarray(v, dtype=float) for v in (label_sd, batch_sd, label_share))
    ss_label = cols * (rows - 1) * label_sd**2
    ss_batch = rows * (cols - 1) * batch_sd**2
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_total = ss_label / label_share
        ms_res = max(float(np.mean((ss_total - ss_label - ss_batch) / ((rows - 1) * (cols - 1)))), 0.0)
    ms_label, ms_batch = float(np.mean(ss_label / (rows - 1))), float(np.mean(ss_batch / (cols - 1)))
    return max((ms_label - ms_res) / cols, 0.0), max((ms_batch - ms_res) / rows, 0.0), ms_res


def linear_trend(x, y) -> dict[str, float]:
    """Least-squares line of y on x with the slope's two-sided 95% t-interval (n - 2 degrees of freedom); NaN with
    fewer than 3 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return {"slope": math.nan, "slope_low": math.nan, "slope_high": math.nan, "intercept": math.nan, "n": len(x)}
    fit = stats.linregress(x, y)
    h = float(stats.t.ppf(0.975, len(x) - 2) * fit.stderr)
    return {
        "slope": float(fit.slope),
        "slope_low": float(fit.slope) - h,
        "slope_high": float(fit.slope) + h,
        "intercept": float(fit.intercept),
        "n": len(x),
    }
