"""Markdown for the report: tables and numbers as the reader sees them."""

from __future__ import annotations

import math

import pandas as pd


def md(df: pd.DataFrame) -> str:
    fmt = df.copy()
    for col in fmt.columns:
        if fmt[col].dtype.kind == "f":
            fmt[col] = fmt[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
        elif fmt[col].dtype.kind == "O":
            fmt[col] = fmt[col].map(lambda v: "" if not isinstance(v, str) and pd.isna(v) else v)  # True/False/NaN
    head = "| " + " | ".join(fmt.columns) + " |\n|" + "---|" * len(fmt.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in fmt.itertuples(index=False))


MAX_PP = 100.0
"""Two accuracies in [0, 100] % differ by at most 100 pp: no difference, interval bound or detectable effect beyond it
is a figure to print."""


class ImpossibleFigure(ValueError):
    """A figure outside its possible range was about to be printed as if valid: a bug in what computed it."""


def within(value: float, low: float, high: float, what: str) -> float:
    """`value` when it lies in [low, high] (NaN passes: it prints as –); else ImpossibleFigure, naming it. The report
    calls it on every figure with a bounded range before printing it (accuracies and shares in [0, 100] %,
    differences and detectable effects within ±100 pp), so an impossible number stops the generator instead of
    reaching a reader."""
    v = float(value)
    if not math.isnan(v) and not low <= v <= high:
        raise ImpossibleFigure(f"{what} = {v:g} lies outside its possible range [{low:g}, {high:g}]; not printed")
    return v


def percent(share: float, digits: int = 1, what: str = "a share") -> str:
    """A share in [0, 1] as a percentage ('3.4%'); refused (ImpossibleFigure) outside that range."""
    return f"{within(share, 0.0, 1.0, what):.{digits}%}"


def mde_cell(v: float, spec: str = ".1f", missing: str = "") -> str:
    """A minimum detectable effect (pp) for a table, formatted by `spec`: '> 100' beyond the largest possible
    difference (no difference two accuracies can have was detectable), `missing` when undefined."""
    if pd.isna(v):
        return missing
    if v > MAX_PP:
        return f"> {MAX_PP:g}"
    return format(within(v, 0.0, MAX_PP, "a minimum detectable effect (pp)"), spec)
