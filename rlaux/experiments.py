"""The experiment matrix of `params.yaml`: which runs exist, and each run's config.

A run is (experiment id, seed). Its config is built in layers: the active profile's
`settings`, then that profile's per-dataset block, then the experiment's own keys, then
seed and output directory (`runs/<profile>/<experiment>/s<seed>`), and validated as one
`TrainConfig`. A run outside the profile (an SVHN experiment, a third seed, or an experiment
not in the profile's `only`) is *inactive*.

DVC has one train stage per experiment: it trains the profile's seeds one after another, and an
experiment the profile does not run only records that, so one `dvc.yaml` serves every profile
at DVC's few seconds per inactive experiment (one stage per run would be ~200 such stages).
The pipeline's first stage writes each experiment's *plan*, `results/plan/<experiment>.json`:
the resolved config of each of its runs under the active profile (none when inactive). Each
train stage depends on its own plan file instead of the whole `profiles` block, so editing one
profile (or another experiment) never invalidates a trained run of another.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlaux import data_source, ledger, run_identity
from rlaux.config import DATASET_FACTS, DatasetName, TrainConfig, build_config, read_yaml
from rlaux.errors import ConfigError, one_line
from rlaux.io import write_json

PARAMS = Path("params.yaml")
RUNS = Path("runs")
PLANS = Path("results/plan")


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seeds: int = Field(gt=0)
    settings: dict[str, Any] = {}
    datasets: dict[DatasetName, dict[str, Any]]
    only: list[str] | None = None
    """If set, the profile runs just these experiment ids (the smoke profile's budget)."""
    seed_pool: list[int] | None = None
    """If set, the profile draws its seeds from this pool instead of the global one (a search and its
    confirmation on seeds that never met)."""


class Search(BaseModel):
    """A search declared (and committed) before its first run: its cells, arms, rule and confirmation.

    Each cell is a profile, run in the order listed (cheapest first). A cell *holds* when `task` beats
    `baseline` (one-sided paired t-test over the cell's seeds, p < `alpha`, on `metric`) and the mean of
    `task` - `step_control` is above 0. The chosen cell is the first that holds; `confirmation` (a profile on
    seeds the search never used) re-tests both differences, Holm-adjusted, and its verdict is the one reported.
    """

    model_config = ConfigDict(extra="forbid")
    cells: list[str] = Field(min_length=1)
    task: str
    """An experiment id, or a template whose "{p}" is each cell's dataset prefix ("{p}-human": the cells may span
    datasets)."""
    baseline: str
    step_control: str
    metric: Literal["test_acc_best_val", "test_acc_last15"] = "test_acc_best_val"
    alpha: float = Field(0.05, gt=0, lt=1)
    rule: Literal["screen", "both"] = "screen"
    """screen (the first search): `task` beats `baseline` (p < alpha) and the mean `task` - `step_control` is above 0;
    the first cell that holds is chosen and costlier cells are not run. both (the second): `task` beats `baseline`
    AND `step_control`, one-sided paired t-tests Holm-adjusted across the two, each p < alpha, and the baseline has
    settled (`settled_slope`); every cell runs, and the cheapest that holds is chosen."""
    settled_slope: float | None = Field(None, gt=0)
    """rule both: the baseline has settled when the mean over its seeds of each run's least-squares slope of test
    accuracy over its last quarter of epochs is below this many pp per epoch."""
    budget_cpu_hours: float | None = Field(None, gt=0)
    """The search's budget: `cells` fit in it by `cost_cpu_hours`; `pruned` are the cells that did not, set aside
    before any run."""
    cost_cpu_hours: dict[str, float] = {}
    """Each cell's cost, estimated before any of its runs (CPU-hours at one thread per run)."""
    pruned: list[str] = []
    """Cells of the registered grid left out before running: over `budget_cpu_hours` (reported, never run)."""
    confirmation: str | None = None
    """The confirmation profile, named once a cell is chosen (its settings are the chosen cell's)."""
    retest: list[str] = []
    """Profiles that re-test the mechanism at the most promising cell (largest mean `task` - `baseline`) when no
    cell holds; their settings must be that cell's."""
    retest_cell: str | None = None
    """The cell the re-test profiles were registered at (the most promising one then). Where a later declared rule
    moves the most promising cell, the re-test stays where it ran and the report says where the cell is now."""
    chain: str | None = None
    """The profile that closes the causal chain in the chosen cell (its settings, fresh seeds), registered before
    its runs."""
    chain_claims: list[str] = []
    """The chain's claims as "better > worse" experiment ids: one family, one-sided paired t-tests on `metric`,
    Holm-adjusted across all of them, judged once every run of `chain` has finished."""

    def claim_pairs(self) -> list[tuple[str, str]]:
        """`chain_claims` as (better, worse) experiment ids."""
        return [tuple(side.strip() for side in claim.split(">")) for claim in self.chain_claims]  # type: ignore[misc]

    @model_validator(mode="after")
    def _rule_is_complete(self) -> Search:
        if self.rule == "both" and self.settled_slope is None:
            raise ValueError("rule 'both' judges the baseline's settling: give settled_slope (pp per epoch)")
        for claim in self.chain_claims:
            sides = claim.split(">")
            if len(sides) != 2 or not all(side.strip() for side in sides):
                raise ValueError(f"chain claim {claim!r} is not 'better > worse' (two experiment ids)")
        if self.chain_claims and self.chain is None:
            raise ValueError("chain_claims are tested on the chain's runs: name the chain profile (`chain`)")
        return self

    def arms(self, params: Params, profile: str) -> tuple[str, str, str]:
        """(task, baseline, step_control) as experiment ids of `profile`: "{p}" becomes its dataset's prefix."""
        datasets = list(params.profiles[profile].datasets)
        prefix = DATASET_FACTS[datasets[0]].prefix if len(datasets) == 1 else None
        arms = (self.task, self.baseline, self.step_control)
        if prefix is None and any("{p}" in arm for arm in arms):
            raise ConfigError(
                f"profile {profile!r} runs datasets {datasets}: a search's arm template ({self.task!r}) needs one "
                f"dataset per cell; give the cell one dataset, or name the arms' experiment ids"
            )
        return tuple(arm.replace("{p}", prefix or "") for arm in arms)  # type: ignore[return-value]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str
    seed_pool: list[int]
    profiles: dict[str, Profile]
    experiments: dict[str, dict[str, Any]]
    searches: dict[str, Search] = {}

    @property
    def active(self) -> Profile:
        return self.profiles[self.profile]

    def at(self, profile: str | None) -> Params:
        """These params with `profile` active (None: as they are); ConfigError naming the known profiles."""
        if profile is None:
            return self
        if profile not in self.profiles:
            raise ConfigError(f"profile {profile!r} unknown; allowed: {', '.join(self.profiles)}")
        return self.model_copy(update={"profile": profile})

    def pool(self) -> list[int]:
        """The seeds the active profile may use: its own pool, else the global one."""
        return self.active.seed_pool if self.active.seed_pool is not None else self.seed_pool

    def seeds(self) -> list[int]:
        return self.pool()[: self.active.seeds]

    def run_dir(self, exp_id: str, seed: int) -> Path:
        return RUNS / self.profile / exp_id / f"s{seed}"

    def plan(self, exp_id: str) -> dict[str, Any]:
        """What the experiment's train stage depends on: the results version and each run's identity (its
        resolved config under the active profile, machine-local fields left out)."""
        runs = []
        for seed in self.seeds():
            cfg = self.run_config(exp_id, seed)
            if cfg is not None:
                runs.append({"seed": seed, "config": run_identity.identity(cfg.snapshot())})
        return {
            "experiment": exp_id,
            "profile": self.profile,
            "results_version": run_identity.results_version(
                self.experiments[exp_id].get("method", TrainConfig.model_fields["method"].default)
            ),
            "runs": runs,
        }

    def run_config(self, exp_id: str, seed: int) -> TrainConfig | None:
        """The run's validated config with the data it reads (`data_sha256`), or None when the active profile does
        not run it."""
        exp = self.experiments[exp_id]
        dataset, only = exp.get("dataset"), self.active.only
        if dataset not in self.active.datasets or seed not in self.seeds() or (only is not None and exp_id not in only):
            return None
        try:
            cfg = build_config(
                self.active.settings,
                self.active.datasets[dataset],
                exp,
                {"seed": seed, "out": str(self.run_dir(exp_id, seed))},
            )
        except ConfigError as err:
            raise ConfigError(f"experiment {exp_id!r} (profile {self.profile!r}): {err}") from None
        return data_source.resolve(cfg)  # the data read is part of the run

    def active_runs(self) -> list[tuple[str, int, TrainConfig]]:
        runs = []
        for exp_id in self.experiments:
            for seed in self.seeds():
                cfg = self.run_config(exp_id, seed)
                if cfg is not None:
                    runs.append((exp_id, seed, cfg))
        return runs


def load_params(path: Path = PARAMS) -> Params:
    """Parse and fully validate params.yaml: every active run's config is checked up front."""
    if not Path(path).exists():  # most often: run outside the repository
        raise ConfigError(
            f"params file {path} not found (looked for {Path(path).absolute()}); run rlaux from the repository "
            f"root (the folder with params.yaml and dvc.yaml) or pass --params /path/to/params.yaml"
        )
    raw = read_yaml(path, what="params file")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"params file {path} must hold a mapping (profile, seed_pool, profiles, experiments), "
            f"not {type(raw).__name__}"
        )
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors())
        raise ConfigError(one_line(f"params file {path} is invalid: {problems}")) from None
    if params.profile not in params.profiles:
        raise ConfigError(f"{path}: profile {params.profile!r} unknown; allowed: {', '.join(params.profiles)}")
    if params.active.seeds > len(params.pool()):
        raise ConfigError(
            f"{path}: profile {params.profile!r} wants {params.active.seeds} seeds but its seed_pool has "
            f"{len(params.pool())}; add seeds to the seed_pool"
        )
    for name, profile in params.profiles.items():
        unknown = set(profile.only or ()) - set(params.experiments)
        if unknown:
            raise ConfigError(f"{path}: profiles.{name}.only names unknown experiments {sorted(unknown)}")
    for name, search in params.searches.items():
        named = [search.confirmation, search.chain, search.retest_cell]
        cells = [*search.cells, *(cell for cell in named if cell), *search.retest]
        for cell in [*cells, *search.pruned, *search.cost_cpu_hours]:
            if cell not in params.profiles:
                raise ConfigError(f"{path}: searches.{name} names profile {cell!r}, which profiles lacks")
        for cell in [*search.cells, *search.pruned]:
            for arm in search.arms(params, cell):
                if arm not in params.experiments:
                    raise ConfigError(
                        f"{path}: searches.{name} names experiment {arm!r} (cell {cell!r}), which experiments lacks"
                    )
        for better, worse in search.claim_pairs():
            for arm in (better, worse):
                if arm not in (params.profiles[search.chain].only or params.experiments):  # type: ignore[index]
                    raise ConfigError(
                        f"{path}: searches.{name}.chain_claims names {arm!r}, which the chain profile "
                        f"{search.chain!r} does not run; add it to that profile's `only` and to `experiments`"
                    )
        if search.budget_cpu_hours is not None:
            registered = sum(search.cost_cpu_hours.get(cell, math.inf) for cell in search.cells)
            if registered > search.budget_cpu_hours:
                raise ConfigError(
                    f"{path}: searches.{name}'s cells cost {registered:g} CPU-hours by cost_cpu_hours, over its "
                    f"budget_cpu_hours {search.budget_cpu_hours:g}; prune cells (move them to `pruned`) before running"
                )
    for exp_id, exp in params.experiments.items():
        if "." in exp_id or "@" in exp_id:
            raise ConfigError(
                f"{path}: experiment id {exp_id!r} may not contain '.' or '@' (DVC reads them as "
                f"key paths and stage names); write e.g. 'lam0p5' for λ = 0.5"
            )
        if "dataset" not in exp:
            raise ConfigError(f"{path}: experiment {exp_id!r} needs a `dataset` key (profiles choose runs by dataset)")
        try:
            build_config(exp)
        except ConfigError as err:
            raise ConfigError(f"{path}: experiment {exp_id!r}: {err}") from None
    params.active_runs()
    return params


def plan_path(exp_id: str, plan_dir: Path = PLANS) -> Path:
    return Path(plan_dir) / f"{exp_id}.json"


def write_plans(params: Params, plan_dir: Path = PLANS) -> list[Path]:
    """One plan file per experiment (a train stage); unchanged files are not touched, stale ones removed. Every
    plan is resolved before the first is written, and stale files go last, so a refusal changes no file."""
    plan_dir = Path(plan_dir)
    plans = {plan_path(exp_id, plan_dir): params.plan(exp_id) for exp_id in params.experiments}
    paths = []
    for path, plan in plans.items():
        if not path.is_file() or json.loads(path.read_text()) != plan:
            write_json(path, plan)
        paths.append(path)
    for stale in set(plan_dir.glob("*.json")) - set(paths):
        stale.unlink()
    return paths


def run_experiment(
    exp_id: str,
    params_path: Path = PARAMS,
    plan_file: Path | None = None,
    seed: int | None = None,
    profile: str | None = None,
) -> dict[int, dict]:
    """Train an experiment's runs, one seed after another, into runs/<profile>/<id>/s<seed>.

    The body of a DVC train stage. With `plan_file` (the stage's dependency), the configs
    resolved from params.yaml must equal the plan, so a stage never trains something other than
    what DVC tracked. A finished run of the same config and code is kept; a checkpoint left by a
    killed run of the same config and code is resumed; one written under another config or other
    code is discarded on purpose (the params or the code changed, so the old run is stale), and so
    are seed directories the plan no longer holds. A damaged checkpoint, one of another rlaux
    version or an incomplete run directory is not: like `rlaux train --resume`, it stops with a
    `CheckpointError` and leaves the directory as it was. `seed` trains that run only (for
    spreading one experiment over several workers: `rlaux dispatch`). `profile` overrides params.yaml's.
    """
    params = load_params(params_path).at(profile)
    if exp_id not in params.experiments:
        raise ConfigError(f"unknown experiment {exp_id!r} in {params_path}; known: {', '.join(params.experiments)}")
    if plan_file is not None:
        if not Path(plan_file).is_file():
            raise ConfigError(f"plan {plan_file} is missing; write it with `rlaux data` (dvc repro data)")
        if json.loads(Path(plan_file).read_text()) != params.plan(exp_id):
            raise ConfigError(
                f"plan {plan_file} is stale (params.yaml changed since); rewrite it with `rlaux data` (dvc repro data)"
            )
    seeds = params.seeds() if seed is None else [seed]
    if seed is not None and seed not in params.pool():
        raise ConfigError(f"seed {seed} is not in seed_pool {params.pool()} of {params_path}; pick one of those")
    runs = {s: cfg for s in seeds if (cfg := params.run_config(exp_id, s)) is not None}
    out = RUNS / params.profile / exp_id
    if seed is None and out.is_dir():  # what the plan no longer holds (other seeds, inactive.json) goes
        for stale in set(out.iterdir()) - {Path(cfg.out) for cfg in runs.values()}:
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
    if not runs:
        out.mkdir(parents=True, exist_ok=True)
        reason = "not in this profile's datasets, seeds or `only`"
        write_json(out / "inactive.json", {"active": False, "profile": params.profile, "reason": reason})
        return {}
    return {s: _train_run(cfg) for s, cfg in runs.items()}


def _train_run(cfg: TrainConfig) -> dict:
    """Train (or resume, or keep) one run, as the ledger says; a run of another config or results version in its
    directory is stale and goes.

    Run directories persist across DVC reruns (`persist: true`: a killed stage resumes its runs,
    and their small files are committed to git), so the stage drops what DVC would have removed:
    runs trained under another results version or another config. A finished run is adopted without
    importing torch (a few file reads per train stage for a dispatched matrix).
    """
    from rlaux.io import workspace_path

    cfg = cfg.model_copy(update={"data_root": workspace_path(cfg.data_root)})  # also inside DVC's queued copies
    if cfg.device == "auto":  # a run records the device it resolved: resolve it here too (this needs torch)
        from rlaux.runtime import resolve_device

        cfg = cfg.model_copy(update={"device": resolve_device("auto").type})
    out = Path(cfg.out)
    run = ledger.verdict(out, cfg.snapshot())
    if run.state == "finished":
        assert run.metrics is not None
        return run.metrics
    if run.state == "stale":
        shutil.rmtree(out)  # discarded on purpose: the params or the code changed since it trained
    from rlaux.training import train  # torch: imported only for a run that trains

    return train(cfg, resume=True)  # a damaged run is refused there (CheckpointError), its directory kept
