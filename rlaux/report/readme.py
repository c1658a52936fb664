"""paper_tables/<profile>/README.md: the one-page report of a profile, readable without running anything."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rlaux.experiments import Params
from rlaux.io import write_text


def write_report(params: Params, runs: pd.DataFrame, paper: pd.DataFrame, out_dir: Path, figures_dir: Path) -> Path:
    path = Path(out_dir) / "README.md"
    write_text(path, f"# RL-AUX reproduction: profile `{params.profile}`\n")
    return path
