"""The experiment matrix of `params.yaml`: which runs exist, and each run's config.

A run is (experiment id, seed). Its config is built in layers: the active profile's
`settings`, then that profile's per-dataset block, then the experiment's own keys, then
seed and output directory, and validated as one `TrainConfig`. A run outside the profile
(an SVHN experiment, a third seed, or an experiment not in `only` under `smoke`) is *inactive*: its DVC stage only
records that, so one `dvc.yaml` serves both profiles.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlaux.config import DatasetName, TrainConfig, build_config, read_yaml
from rlaux.errors import CheckpointMismatch, ConfigError, one_line
from rlaux.io import write_json

PARAMS = Path("params.yaml")
RUNS = Path("runs")


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seeds: int = Field(gt=0)
    settings: dict[str, Any] = {}
    datasets: dict[DatasetName, dict[str, Any]]
    only: list[str] | None = None
    """If set, the profile runs just these experiment ids (the smoke profile's budget)."""


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str
    seed_pool: list[int]
    profiles: dict[str, Profile]
    experiments: dict[str, dict[str, Any]]

    @property
    def active(self) -> Profile:
        return self.profiles[self.profile]

    def seeds(self) -> list[int]:
        return self.seed_pool[: self.active.seeds]

    def run_dir(self, exp_id: str, seed: int) -> Path:
        return RUNS / exp_id / f"s{seed}"

    def run_config(self, exp_id: str, seed: int) -> TrainConfig | None:
        """The run's validated config, or None when the active profile does not run it."""
        exp = self.experiments[exp_id]
        dataset, only = exp.get("dataset"), self.active.only
        if dataset not in self.active.datasets or seed not in self.seeds() or (only is not None and exp_id not in only):
            return None
        try:
            return build_config(
                self.active.settings,
                self.active.datasets[dataset],
                exp,
                {"seed": seed, "out": str(self.run_dir(exp_id, seed))},
            )
        except ConfigError as err:
            raise ConfigError(f"experiment {exp_id!r} (profile {self.profile!r}): {err}") from None

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
    if params.active.seeds > len(params.seed_pool):
        raise ConfigError(
            f"{path}: profile {params.profile!r} wants {params.active.seeds} seeds but seed_pool has "
            f"{len(params.seed_pool)}; add seeds to seed_pool"
        )
    for name, profile in params.profiles.items():
        unknown = set(profile.only or ()) - set(params.experiments)
        if unknown:
            raise ConfigError(f"{path}: profiles.{name}.only names unknown experiments {sorted(unknown)}")
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


def run_experiment(exp_id: str, seed: int, params_path: Path = PARAMS) -> dict:
    """Train one cell of the matrix into runs/<id>/s<seed> (the body of a DVC train stage).

    A checkpoint left by a killed run of the same config is resumed; one written under
    another config is discarded on purpose (the params changed, so the old run is stale; DVC
    itself removes a stage's outputs before re-running it). A damaged checkpoint, one of
    another rlaux version or an incomplete run directory is not: like `rlaux train --resume`,
    it stops with a `CheckpointError` and leaves the directory as it was.
    """
    params = load_params(params_path)
    if exp_id not in params.experiments:
        raise ConfigError(f"unknown experiment {exp_id!r} in {params_path}; known: {', '.join(params.experiments)}")
    cfg = params.run_config(exp_id, seed)
    out = params.run_dir(exp_id, seed)
    if cfg is None:
        out.mkdir(parents=True, exist_ok=True)
        status = {
            "active": False,
            "profile": params.profile,
            "reason": "not in this profile's datasets, seeds or `only`",
        }
        write_json(out / "metrics.json", status)
        return status
    from rlaux.training import train  # torch: imported only for a run that trains

    try:
        return train(cfg, resume=True)
    except CheckpointMismatch:
        shutil.rmtree(out)
        return train(cfg)
