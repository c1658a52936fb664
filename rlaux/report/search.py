"""A pre-registered search (params.yaml `searches`), applied as registered: each cell's paired tests, the rule,
the chosen cell and its confirmation on fresh seeds.

Reads each run's metrics.json and timing.json under runs/<cell>/, so it needs no pipeline stage of the cell's
profile: the cells are profiles no `dvc repro` of the active profile trains (`rlaux dispatch --profile <cell>`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from rlaux.config import DATASET_FACTS
from rlaux.errors import ConfigError
from rlaux.experiments import Params, Search
from rlaux.io import write_json, write_text
from rlaux.report.markdown import md
from rlaux.report.stats import holm, linear_trend, paired_test


def arm_metrics(params: Params, profile: str, arms: tuple[str, ...], metric: str) -> tuple[pd.DataFrame, int]:
    """One row per finished (arm, seed) of the profile: the metric and the run's training seconds; and how many
    runs the profile has in all (a cell is judged only when every one has finished)."""
    at = params.model_copy(update={"profile": profile})
    rows, planned = [], 0
    for exp_id in arms:
        for seed in at.seeds():
            if at.run_config(exp_id, seed) is None:
                raise ConfigError(f"profile {profile!r} does not run {exp_id!r}; add it to the profile's `only`")
            planned += 1
            run = at.run_dir(exp_id, seed)
            if not (run / "metrics.json").is_file():
                continue
            metrics = json.loads((run / "metrics.json").read_text())
            timing = run / "timing.json"
            per_epoch = json.loads(timing.read_text())["seconds_per_epoch"] if timing.is_file() else math.nan
            rows.append(
                {"arm": exp_id, "seed": seed, metric: metrics[metric], "seconds": per_epoch * metrics["epochs"]}
            )
    return pd.DataFrame(rows), planned


def cell_tests(search: Search, table: pd.DataFrame) -> dict:
    """task - baseline and task - step_control, paired over seeds: means, 95% t-intervals, one-sided p."""
    by = table.pivot(index="seed", columns="arm", values=search.metric)
    vs_base = paired_test(by[search.task], by[search.baseline])
    vs_step = paired_test(by[search.task], by[search.step_control])
    return {
        "n": vs_base["n"],
        "task_minus_baseline": vs_base["mean_difference"],
        "baseline_ci95_low": vs_base["ci95_low"],
        "baseline_ci95_high": vs_base["ci95_high"],
        "baseline_p": vs_base["p_value"],
        "task_minus_step_control": vs_step["mean_difference"],
        "step_ci95_low": vs_step["ci95_low"],
        "step_ci95_high": vs_step["ci95_high"],
        "step_p": vs_step["p_value"],
        "train_minutes": float(table.seconds.sum() / 60),
    }


def search_table(params: Params, name: str) -> pd.DataFrame:
    """Every cell in its registered order, then the confirmation: tests, whether the cell holds, which is chosen.

    Cells after the chosen one are listed as "not run (a cheaper cell holds)"; a cell not yet trained as
    "not run", one still training as "partly trained" (not judged, and no costlier cell is chosen meanwhile). The confirmation's two claims are Holm-adjusted together (`p_holm`); the search's are not
    (the rule is a screen, and its seeds never enter the confirmation)."""
    search = params.searches[name]
    arms = (search.task, search.baseline, search.step_control)
    rows, chosen, undecided = [], None, False
    for cell in search.cells:
        row = {"stage": "search", "profile": cell, "compute": relative_compute(params, cell, search.baseline)}
        table, planned = arm_metrics(params, cell, arms, search.metric)
        if len(table) < planned:
            status = "not run" if table.empty else f"partly trained ({len(table)} of {planned} runs): not judged"
            if chosen is not None and table.empty:
                status = "not run (a cheaper cell holds)"
            undecided |= chosen is None and not table.empty  # a cheaper cell still running: no later cell is chosen
            rows.append(row | {"status": status})
            continue
        tests = cell_tests(search, table)
        holds = tests["baseline_p"] < search.alpha and tests["task_minus_step_control"] > 0
        if holds and chosen is None and not undecided:
            chosen = cell
        rows.append(row | tests | {"status": "holds" if holds else "does not hold", "chosen": cell == chosen})
    if search.confirmation:
        row = {
            "stage": "confirmation",
            "profile": search.confirmation,
            "compute": relative_compute(params, search.confirmation, search.baseline),
        }
        table, planned = arm_metrics(params, search.confirmation, arms, search.metric)
        if len(table) < planned:
            rows.append(row | {"status": f"not run ({len(table)} of {planned} runs finished)"})
        else:
            tests = cell_tests(search, table)
            p_base, p_step = holm([tests["baseline_p"], tests["step_p"]], alpha=search.alpha)
            both = p_base < search.alpha and p_step < search.alpha
            status = "holds" if both else ("holds against the baseline only" if p_base < search.alpha else "fails")
            rows.append(row | tests | {"baseline_p_holm": p_base, "step_p_holm": p_step, "status": status})
    return pd.DataFrame(rows)


def relative_compute(params: Params, profile: str, arm: str) -> float:
    """A run's training compute in the profile, width² x epochs x training images (a VGG's multiply-adds grow with
    the square of its width), relative to width 1, one epoch and 1,000 images: machine-free, unlike seconds."""
    at = params.model_copy(update={"profile": profile})
    cfg = at.run_config(arm, at.seeds()[0])
    if cfg is None:
        raise ConfigError(f"profile {profile!r} does not run {arm!r}; add it to the profile's `only`")
    return cfg.width**2 * cfg.epochs * (cfg.train_size or DATASET_FACTS[cfg.dataset].full_train) / 1000


def trend(table: pd.DataFrame, target: float = 0.0) -> dict[str, float]:
    """task - baseline against log2 of the judged cells' compute: the slope per doubling with its 95% t-interval and,
    where the slope is positive, the compute at which the line reaches `target` pp (an extrapolation, to be read as
    an order of magnitude, and only as a question for a machine that affords it)."""
    judged = (
        table[(table.stage == "search") & table.task_minus_baseline.notna()]
        if "task_minus_baseline" in table
        else table.iloc[:0]
    )
    fit = linear_trend(np.log2(judged.compute.astype(float)), judged.task_minus_baseline.astype(float))
    reach = 2 ** ((target - fit["intercept"]) / fit["slope"]) if fit["slope"] > 0 else math.nan
    return fit | {
        "target": target,
        "target_at_compute": reach,
        "largest_judged": float(judged.compute.max()) if len(judged) else math.nan,
    }


def write_search(params: Params, name: str, out_dir: Path) -> pd.DataFrame:
    """paper_tables/searches/<name>.csv and a readable <name>.md."""
    if name not in params.searches:
        raise ConfigError(f"no search {name!r} in params.yaml; declared: {', '.join(params.searches) or 'none'}")
    table = search_table(params, name)
    search = params.searches[name]
    write_text(out_dir / f"{name}.csv", table.to_csv(index=False))
    shown = table.rename(
        columns={
            "task_minus_baseline": f"{search.task} − {search.baseline} (pp)",
            "baseline_p": "p (one-sided)",
            "task_minus_step_control": f"{search.task} − {search.step_control} (pp)",
            "step_p": "p ×2 (one-sided)",
        }
    )
    line = trend(table)
    write_json(out_dir / f"{name}_trend.json", line)
    if math.isnan(line["slope"]):  # target 0: where the line crosses zero
        words = "Trend: fewer than 3 judged cells."
    else:
        words = (
            f"Trend over the {line['n']} judged cells: {line['slope']:+.2f} pp per doubling of compute "
            f"(95% CI {line['slope_low']:+.2f} to {line['slope_high']:+.2f})"
            + (
                f"; the line crosses zero at about {line['target_at_compute'] / line['largest_judged']:.3g}x the "
                "largest judged cell's compute (an extrapolation)."
                if not math.isnan(line["target_at_compute"])
                else "; it does not rise, so it points to no scale at which the control would hold."
            )
        )
    text = (
        f"# Search `{name}` ({search.metric})\n\ncompute: width² x epochs x training images / 1,000 per run. "
        f"{words}\n\n{md(shown)}\n"
    )
    write_text(out_dir / f"{name}.md", text)
    return table
