"""A pre-registered search (params.yaml `searches`), applied as registered: each cell's paired tests, the rule,
the chosen cell and its confirmation on fresh seeds.

Reads each run's metrics.json and timing.json under runs/<cell>/, so it needs no pipeline stage of the cell's
profile: the cells are profiles no `dvc repro` of the active profile trains (`rlaux dispatch --profile <cell>`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rlaux.config import DATASET_FACTS
from rlaux.errors import ConfigError
from rlaux.experiments import Params, Search
from rlaux.io import read_table, write_json, write_text
from rlaux.report.claims import CLAIM_METRICS, all_claims, paper_difference
from rlaux.report.collect import AGREEMENT_EPOCHS, final_agreement
from rlaux.report.markdown import md
from rlaux.report.spec import load as load_spec
from rlaux.report.stats import holm, linear_trend, mde, mean_ci, paired_test


def arm_metrics(params: Params, profile: str, arms: tuple[str, ...], metric: str) -> tuple[pd.DataFrame, int]:
    """One row per finished (arm, seed) of the profile: the metric and the run's training seconds; and how many
    runs the profile has in all (a cell is judged only when every one has finished)."""
    at = params.at(profile)
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
                | {"last_quarter_slope": last_quarter_slope(run)}
            )
    return pd.DataFrame(rows), planned


def last_quarter_slope(run: Path) -> float:
    """The run's least-squares slope of test accuracy (pp per epoch) over its last quarter of epochs (at least 2);
    NaN for a run without its history."""
    if not (run / "history.csv").is_file():
        return math.nan
    history = pd.read_csv(run / "history.csv")
    last = history.tail(max(2, math.ceil(len(history) / 4)))
    return float(np.polyfit(last.epoch.astype(float), last.test_acc.astype(float), 1)[0])  # 2 points: their slope


def settledness(table: pd.DataFrame, arm: str) -> dict:
    """The arm's last-quarter slope: mean over seeds with its 95% t-interval (the rule reads the mean)."""
    m, h, _ = mean_ci(table[table.arm == arm].last_quarter_slope.astype(float).tolist())
    return {"settling_slope": m, "settling_ci95_low": m - h, "settling_ci95_high": m + h}


def cell_tests(search: Search, table: pd.DataFrame, arms: tuple[str, str, str]) -> dict:
    """task - baseline and task - step_control, paired over seeds: means, 95% t-intervals, one-sided p."""
    task, baseline, step_control = arms
    by = table.pivot(index="seed", columns="arm", values=search.metric)
    vs_base = paired_test(by[task], by[baseline])
    vs_step = paired_test(by[task], by[step_control])
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
    """Every cell in its registered order, then the cells pruned before running, then the confirmation: tests, whether
    the cell holds, which is chosen.

    Rule screen: cells after the chosen one are listed as "not run (a cheaper cell holds)". Rule both: every cell runs,
    each is judged on both differences (one-sided, Holm across the two) and on the baseline's settling, and the
    first (cheapest) that holds is chosen. A cell not yet trained is "not run", one still training "partly trained"
    (not judged, and no costlier cell is chosen meanwhile). The confirmation's two claims are Holm-adjusted together
    (`p_holm`)."""
    search = params.searches[name]
    rows, chosen, undecided = [], None, False
    for cell in search.cells:
        arms = search.arms(params, cell)
        row = {"stage": "search", "profile": cell, "compute": relative_compute(params, cell, arms[1])}
        row |= {"cost_cpu_hours": search.cost_cpu_hours[cell]} if cell in search.cost_cpu_hours else {}
        table, planned = arm_metrics(params, cell, arms, search.metric)
        if len(table) < planned:
            status = "not run" if table.empty else f"partly trained ({len(table)} of {planned} runs): not judged"
            if chosen is not None and table.empty and search.rule == "screen":
                status = "not run (a cheaper cell holds)"
            undecided |= chosen is None and not table.empty  # a cheaper cell still running: no later cell is chosen
            rows.append(row | {"status": status})
            continue
        tests = cell_tests(search, table, arms)
        if search.rule == "both":
            p_base, p_step = holm([tests["baseline_p"], tests["step_p"]], alpha=search.alpha)
            settled = settledness(table, arms[1])
            assert search.settled_slope is not None  # rule both registers it (load_params)
            is_settled = settled["settling_slope"] < search.settled_slope
            tests |= {"baseline_p_holm": p_base, "step_p_holm": p_step} | settled | {"settled": is_settled}
            holds = p_base < search.alpha and p_step < search.alpha and is_settled
        else:
            holds = tests["baseline_p"] < search.alpha and tests["task_minus_step_control"] > 0
        if holds and chosen is None and not undecided:
            chosen = cell
        rows.append(row | tests | {"status": "holds" if holds else "does not hold", "chosen": cell == chosen})
    for cell in search.pruned:
        arms = search.arms(params, cell)
        rows.append(
            {"stage": "pruned", "profile": cell, "compute": relative_compute(params, cell, arms[1])}
            | ({"cost_cpu_hours": search.cost_cpu_hours[cell]} if cell in search.cost_cpu_hours else {})
            | {"status": f"pruned before running (over the {search.budget_cpu_hours:g} CPU-hour budget)"}
        )
    if search.confirmation:
        arms = search.arms(params, search.confirmation)
        row = {
            "stage": "confirmation",
            "profile": search.confirmation,
            "compute": relative_compute(params, search.confirmation, arms[1]),
        }
        table, planned = arm_metrics(params, search.confirmation, arms, search.metric)
        if len(table) < planned:
            rows.append(row | {"status": f"not run ({len(table)} of {planned} runs finished)"})
        else:
            tests = cell_tests(search, table, arms)
            p_base, p_step = holm([tests["baseline_p"], tests["step_p"]], alpha=search.alpha)
            both = p_base < search.alpha and p_step < search.alpha
            status = "holds" if both else ("holds against the baseline only" if p_base < search.alpha else "fails")
            rows.append(row | tests | {"baseline_p_holm": p_base, "step_p_holm": p_step, "status": status})
    return pd.DataFrame(rows)


def relative_compute(params: Params, profile: str, arm: str) -> float:
    """A run's training compute in the profile, width² x epochs x training images (a VGG's multiply-adds grow with
    the square of its width), relative to width 1, one epoch and 1,000 images: machine-free, unlike seconds."""
    at = params.at(profile)
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


@dataclass(frozen=True)
class Retest:
    """The re-test as `rlaux search` wrote it (<name>_retest.csv, <name>_agent.csv), for the report."""

    claims: pd.DataFrame
    agent: pd.DataFrame

    @classmethod
    def read(cls, search_csv: Path) -> Retest | None:
        """The re-test written beside a search's table, or None when there is none."""
        tables = _beside(search_csv, "retest", "agent")
        return None if tables is None else cls(*tables)

    def cell(self, table: pd.DataFrame) -> str | None:
        """The search cell the re-test ran at (its claims' `cell`; a table from before that column: the most
        promising cell of `table`)."""
        if "cell" in self.claims and len(self.claims):
            return str(self.claims.cell.iloc[0])
        return most_promising(table)


@dataclass(frozen=True)
class Chain:
    """The chain as `rlaux search` wrote it (<name>_chain.csv, <name>_chain_agent.csv), for the answer."""

    claims: pd.DataFrame
    agent: pd.DataFrame

    @classmethod
    def read(cls, search_csv: Path) -> Chain | None:
        """The judged chain written beside a search's table; None when there is none or it is not judged yet (its
        claims are empty until every chain run has finished)."""
        tables = _beside(search_csv, "chain", "chain_agent")
        return None if tables is None or tables[0].empty else cls(*tables)


def _beside(search_csv: Path, *parts: str) -> tuple[pd.DataFrame, ...] | None:
    """The tables `rlaux search` wrote beside a search's table (<name>_<part>.csv), or None when one is missing."""
    paths = [search_csv.with_name(f"{search_csv.stem}_{part}.csv") for part in parts]
    return tuple(read_table(p) for p in paths) if all(p.is_file() for p in paths) else None


def most_promising(table: pd.DataFrame) -> str | None:
    """The judged search cell with the largest mean task - baseline (where a search that found no holding cell
    re-tests the mechanism); None while no cell is judged."""
    if "task_minus_baseline" not in table:
        return None
    judged = table[(table.stage == "search") & table.task_minus_baseline.notna()]
    return None if judged.empty else str(judged.loc[judged.task_minus_baseline.astype(float).idxmax(), "profile"])


def retest_runs(params: Params, profile: str) -> tuple[pd.DataFrame, int]:
    """One row per finished run of a re-test profile: the claim metrics, the validation accuracy (the claims pick
    pools on it) and, for RL runs, the fine agreement over the last epochs; and how many runs it plans."""
    at = params.at(profile)
    rows, planned = [], 0
    for exp_id, seed, cfg in at.active_runs():
        planned += 1
        run = at.run_dir(exp_id, seed)
        if not (run / "metrics.json").is_file():
            continue
        metrics = json.loads((run / "metrics.json").read_text())
        history = pd.read_csv(run / "history.csv")
        rows.append(
            {"profile": profile, "experiment": exp_id, "seed": seed}
            | {key: metrics[key] for key in (*CLAIM_METRICS, "val_acc_best")}
            | {"fine_agreement": final_agreement(history), "chance": 1 / cfg.psi}
            | {"label_nmi": final_label_nmi(history) if cfg.method in ("rl", "wa-rl") else math.nan}
        )
    return pd.DataFrame(rows), planned


def final_label_nmi(history: pd.DataFrame) -> float:
    """The main epochs' argmax labels' normalised mutual information with the human classes, over the run's last
    AGREEMENT_EPOCHS epochs (0: independent of them); NaN where the run logs none. What an untrained agent can
    be measured by: it samples no labels, so it has no fine agreement."""
    if "labels/nmi" not in history:
        return math.nan
    return float(history["labels/nmi"].dropna().tail(AGREEMENT_EPOCHS).mean())


def retest_tables(params: Params, name: str, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """When no cell holds: the paper's claims (Holm across those the re-test can test, per metric) and the agent's
    fine agreement (mean over seeds, 95% t-interval) on the search's re-test profiles, with a status line.

    A re-test profile must run the most promising cell's settings, and a profile is judged only once every one
    of its runs has finished."""
    search = params.searches[name]
    now = most_promising(table)
    cell = search.retest_cell or now
    empty = pd.DataFrame()
    if not search.retest:
        return empty, empty, "no re-test declared"
    if (table.status == "holds").any():
        return empty, empty, "a cell holds: the claims are re-tested in the confirmed regime instead"
    if cell is None:
        return empty, empty, "no cell judged yet"
    want = params.profiles[cell]
    for profile in search.retest:
        have = params.profiles[profile]  # load_params checked that it exists
        if (have.settings, have.datasets) != (want.settings, want.datasets):
            raise ConfigError(
                f"search {name!r}: re-test profile {profile!r} must run the most promising cell {cell!r}'s settings "
                f"and datasets ({want.settings}, {want.datasets}); it has ({have.settings}, {have.datasets})"
            )
    finished, waiting = [], []
    for profile in search.retest:
        runs, planned = retest_runs(params, profile)
        if len(runs) == planned:
            finished.append(runs)
        else:
            waiting.append(f"{profile} {len(runs)} of {planned} runs")
    moved = f", where it was registered; under today's rules the most promising cell is {now}" if now != cell else ""
    status = f"at {cell}{moved}" + (f"; not judged yet: {', '.join(waiting)}" if waiting else "")
    if not finished:
        return empty, empty, status
    runs = pd.concat(finished, ignore_index=True)
    claims = all_claims(runs, profile=",".join(runs.profile.unique()))
    claims = claims[claims.n > 0].reset_index(drop=True).assign(cell=cell)
    agent = []
    for (profile, exp_id), g in runs[runs.fine_agreement.notna()].groupby(["profile", "experiment"], sort=False):
        m, h, n = mean_ci(g.fine_agreement)
        agent.append(
            {"profile": profile, "experiment": exp_id, "fine_agreement": m, "ci95": h, "seeds": n}
            | {"chance": g.chance.iloc[0], "above_chance": bool(m - h > g.chance.iloc[0])}
        )
    return claims, pd.DataFrame(agent), status


def chain_claims(runs: pd.DataFrame, pairs: list[tuple[str, str]], metric: str, alpha: float) -> pd.DataFrame:
    """The chain's registered claims on one metric: one family, one-sided paired t-tests over seeds, Holm across
    the family; `mde_80` is the difference each test detects at 80% power at its share of alpha (Holm's first)."""
    rows = []
    for better, worse in pairs:
        hi, lo = (runs[runs.experiment == arm].set_index("seed")[metric] for arm in (better, worse))
        rows.append({"claim": f"{better} > {worse}", "metric": metric} | paired_test(hi, lo))
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table.p_value.tolist(), alpha=alpha)
    table["mde_80"] = [mde(r.n, r.sd_difference, alpha=alpha / len(table), one_sided=True) for r in table.itertuples()]
    table["verdict"] = [
        "holds" if r.p_holm < alpha else "does not hold" + (" (the 95% interval is below 0)" if r.ci95_high < 0 else "")
        for r in table.itertuples()
    ]
    return table


def chain_agent(runs: pd.DataFrame) -> pd.DataFrame:
    """Per RL arm, what its labels share with the human classes (mean over seeds, 95% t-half-width): the trained
    agents' sampled labels' fine agreement against chance 1/ψ, and every arm's argmax-label NMI (the untrained
    arms sample none)."""
    rows = []
    for exp_id, g in runs[runs.label_nmi.notna()].groupby("experiment", sort=False):
        agreement, half, n = mean_ci(g.fine_agreement.dropna())
        nmi, nmi_half, _ = mean_ci(g.label_nmi)
        rows.append(
            {"experiment": exp_id, "seeds": len(g), "fine_agreement": agreement, "ci95": half}
            | {"chance": g.chance.iloc[0], "above_chance": bool(n and agreement - half > g.chance.iloc[0])}
            | {"label_nmi": nmi, "label_nmi_ci95": nmi_half}
        )
    return pd.DataFrame(rows)


def randomized_task(runs: pd.DataFrame, paper: pd.DataFrame | None) -> dict[str, float]:
    """The authors' Randomized Task (an agent never trained, their settings; paper.csv) minus their single-task
    run on CIFAR-100-20, beside ours on the chain's data: the untrained as-run arm minus single, last epochs."""
    arms = load_spec().arms.randomized_task
    theirs = paper_difference(paper, *arms.paper, "test_acc_last15")
    ours = paired_test(*(runs[runs.experiment == arm].set_index("seed").test_acc_last15 for arm in arms.ours))
    return {"paper_difference": theirs} | {key: ours[key] for key in ("n", "mean_difference", "ci95_low", "ci95_high")}


def chain_tables(
    params: Params, name: str, paper: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float], str]:
    """The chain's claims (the registered metric's family first, then test_acc_last15 as its own family), its RL
    arms' labels, the Randomized Task comparison and a status line; judged only once every chain run has finished
    (no claim is read before its family is complete)."""
    search = params.searches[name]
    empty = pd.DataFrame()
    if search.chain is None:
        return empty, empty, {}, "no chain declared"
    runs, planned = retest_runs(params, search.chain)
    if len(runs) < planned:
        done = runs.groupby("experiment").size().to_dict() if len(runs) else {}
        arms = ", ".join(f"{arm} {n}" for arm, n in done.items()) or "none"
        return empty, empty, {}, f"not judged yet: {len(runs)} of {planned} runs finished (per arm: {arms})"
    metrics = [search.metric, *(m for m in CLAIM_METRICS if m != search.metric)]
    claims = pd.concat([chain_claims(runs, search.claim_pairs(), m, search.alpha) for m in metrics], ignore_index=True)
    have = set(runs.experiment)
    compare = randomized_task(runs, paper) if set(load_spec().arms.randomized_task.ours) <= have else {}
    return claims, chain_agent(runs), compare, f"at {search.chain}, {len(runs)} runs"


CHAIN_FIGURES = Path("figures")
"""Where the `chain_figures` stage draws the chain profile's own figures (<chain>/<file>.png; report.yaml's figures
of the chain's datasets), linked from the search's .md in paper_tables/searches/."""


def chain_markdown(
    name: str, search: Search, claims: pd.DataFrame, agent: pd.DataFrame, compare: dict, figures: list[str]
) -> str:
    """The chain's section of the search's .md: its arms' figures, claims per family, the agents' labels, the
    Randomized Task."""
    text = (
        f"Registered claims, one family per metric ({search.metric} first, the one the answer quotes): one-sided "
        f"paired t-tests over seeds, Holm across the {len(search.chain_claims)} claims (`p_holm`), α = "
        f"{search.alpha:g}; `mde_80`: the difference each test detects at 80% power. The positive control on "
        "≥ 10 fresh seeds is the confirmation row above.\n\n"
    )
    for file in figures:
        text += f"![{file}](../../{CHAIN_FIGURES / str(search.chain) / file}.png)\n\n"
    cols = [
        "claim",
        "metric",
        "n",
        "mean_difference",
        "ci95_low",
        "ci95_high",
        "p_value",
        "p_holm",
        "mde_80",
        "verdict",
    ]
    text += md(claims[cols])
    if len(agent):
        text += (
            "\n\nThe RL arms' labels against the human classes (mean over seeds, 95% t-half-width, last "
            f"{AGREEMENT_EPOCHS} epochs): `fine_agreement`, the trained agent's sampled labels = the human class "
            "(chance 1/ψ; an untrained agent samples none); `label_nmi`, the main epochs' argmax labels' normalised "
            "mutual information with the human classes (0: independent). Argmax labels are not the policy.\n\n"
            + md(agent)
        )
    if compare:
        text += (
            f"\n\nThe authors' Randomized Task (an agent never trained, their settings) minus their single-task run: "
            f"{compare['paper_difference']:+.2f} pp on CIFAR-100-20 (one run, last 15 epochs, paper.csv); ours, "
            f"{' − '.join(load_spec().arms.randomized_task.ours)} on the chain's data (test_acc_last15: the last "
            f"min(15, epochs) epochs): "
            f"{compare['mean_difference']:+.2f} pp (95% CI {compare['ci95_low']:+.2f} to "
            f"{compare['ci95_high']:+.2f}, {compare['n']} seeds). Another dataset: a direction, not a replication."
        )
    return text + "\n"


def chain_figures(params: Params, search: Search) -> list[str]:
    """report.yaml's figures of the chain profile's datasets (their files): what the `chain_figures` stage draws."""
    datasets = params.profiles[str(search.chain)].datasets
    return [f.file for f in load_spec().figures if f.dataset in datasets]


def write_search(params: Params, name: str, out_dir: Path, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """paper_tables/searches/<name>.csv and a readable <name>.md; with a re-test, <name>_retest.csv (claims) and
    <name>_agent.csv (fine agreement); with a chain, <name>_chain.csv and <name>_chain_agent.csv; all shown in
    the .md. `paper` (paper.csv) gives the chain its Randomized Task comparison."""
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
    line = trend(table) if search.rule == "screen" else {}
    if search.rule == "both":  # cells of several datasets: no one line through them was registered
        words = (
            f"Rule: both differences one-sided, Holm across the two, p < {search.alpha:g}, and the baseline settled "
            f"(mean last-quarter slope of test accuracy < {search.settled_slope:g} pp per epoch); every cell within "
            f"the {search.budget_cpu_hours:g} CPU-hour budget runs; the cheapest that holds is chosen."
        )
    elif math.isnan(line["slope"]):  # target 0: where the line crosses zero
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
    if search.rule == "screen":
        write_json(out_dir / f"{name}_trend.json", line)
    text = (
        f"# Search `{name}` ({search.metric})\n\ncompute: width² x epochs x training images / 1,000 per run. "
        f"{words}\n\n{md(shown)}\n"
    )
    if search.retest:
        claims, agent, status = retest_tables(params, name, table)
        write_text(out_dir / f"{name}_retest.csv", claims.to_csv(index=False))
        write_text(out_dir / f"{name}_agent.csv", agent.to_csv(index=False))
        text += f"\n## Re-test of the mechanism ({status})\n\n" + retest_markdown(claims, agent)
    if search.chain:
        claims, agent, compare, status = chain_tables(params, name, paper)
        write_text(out_dir / f"{name}_chain.csv", claims.to_csv(index=False))
        write_text(out_dir / f"{name}_chain_agent.csv", agent.to_csv(index=False))
        text += f"\n## The chain ({status})\n\n" + (
            chain_markdown(name, search, claims, agent, compare, chain_figures(params, search))
            if len(claims)
            else "Not judged yet.\n"
        )
    write_text(out_dir / f"{name}.md", text)
    return table


def retest_markdown(claims: pd.DataFrame, agent: pd.DataFrame) -> str:
    """The re-test's claims per metric (Holm within each) and the agent's fine agreement (chance 1/ψ)."""
    if claims.empty:
        return "No re-test profile has finished.\n"
    cols = ["claim", "metric", "n", "mean_difference", "ci95_low", "ci95_high", "p_value", "p_holm", "verdict"]
    text = (
        "Paired t-tests over seeds (`p_value` one-sided); verdicts by the claims' rule (`rlaux.report.claims`): Holm "
        "across the claims tested on each metric, on their two-sided p (`p_holm`).\n\n" + md(claims[cols])
    )
    if len(agent):
        text += (
            "\n\nFine agreement (sampled labels = human fine labels; chance 1/ψ) over each run's last epochs: mean "
            "over seeds, the half-width of its 95% t-interval, and whether the whole interval is above chance.\n\n"
            + md(agent)
        )
    return text + "\n"
