"""Markdown for the report: tables and numbers as the reader sees them."""

from __future__ import annotations

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
