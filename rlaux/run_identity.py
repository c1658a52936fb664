"""What makes two runs the same run, in one place (no torch).

A run is its config plus the version of the numbers the code computes. Every config field declares
its identity class beside its definition (`rlaux.config`: LOCAL, EXTENSIBLE, ADDED_LATER, else it makes
another run); this module reads the declarations once, the plans DVC tracks read it, and `rlaux.ledger` (the one place that decides
about a run directory) compares a directory's run with a config through it.

The results version replaces hashing source text: moving code between files keeps committed runs;
a change that moves any number must bump its method family's results version (`RESULTS_VERSIONS`), and the
committed fingerprint of each method's tiny float64 run (tests/results_fingerprint.json, compared in CI) fails
until it does.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from rlaux.config import TrainConfig
from rlaux.registry import METHODS

RESULTS_VERSIONS: dict[str, str] = {
    "baseline": "2",
    "maxl": "2",
    "rl": "2",
}
"""The results version of each method family (`rlaux.registry`: baseline = single, human and random). Bump a
family's when a change moves its numbers (then re-record: python tests/test_results_version.py --record); a change
in RL-AUX's credit leaves single-task and MAXL runs valid, a change in the shared loop bumps all three. The first
version keeps the name it had as a source hash, the one the committed 10-pass study trained under; later versions
may be any new string. "2": a best-validation tie goes to the earliest epoch (was the latest); training is unchanged,
so the committed runs' metrics.json were re-derived from their history.csv, not retrained."""


def results_version(method: str) -> str:
    """The results version `method`'s runs train under (its family's)."""
    return RESULTS_VERSIONS[METHODS[method].family]


def _declared(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], tuple[str, Any]]:
    """Each config field's path, identity class (declared beside it in `rlaux.config`; "run" when undeclared) and
    default, nested sections included (a local section's fields are local with it)."""
    out: dict[tuple[str, ...], tuple[str, Any]] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        kind, path = str(extra.get("identity", "run")), (*prefix, name)
        out[path] = (kind, field.default)
        section = field.annotation
        if kind != "local" and isinstance(section, type) and issubclass(section, BaseModel):
            out |= _declared(section, path)
    return out


FIELDS = _declared(TrainConfig)
"""Every config field by path: its identity class and default."""
LOCAL_PATHS = frozenset(path for path, (kind, _) in FIELDS.items() if kind == "local")
"""Machine-local fields (where the data and the run live, downloading, progress bars, GPU packing) and settings that
move no number (evaluation batch size, the agent's diagnostics): plans leave them out and a run may be resumed or
adopted under other values."""
LOCAL_FIELDS = frozenset(path[0] for path in LOCAL_PATHS if len(path) == 1)
EXTENSIBLE_FIELDS = frozenset(path[0] for path, (kind, _) in FIELDS.items() if kind == "extensible")
"""A killed run may be resumed with more epochs (extending it); a finished run of other epochs is another run."""
OPTIONAL_FIELDS: dict[tuple[str, ...], Any] = {
    path: default for path, (kind, default) in FIELDS.items() if kind == "added later"
}
"""Fields added after runs were committed, with their defaults: left out of a run's identity at their default."""


KNOWN_DATA: dict[str, str] = {
    "60897b61b4a26cf98d92b91c7024e5ee77f2696479db9becbd7584fba59bb364": "the 10,000-image CIFAR-10 subset "
    "(subsets/cifar10.npz)",
    "0e78546293ed6e4807d16b95bb0a52e2ae8a15c70e98198af19ff663a8f92ffd": "the 1,117-image CIFAR-100 slice "
    "(subsets/cifar100.npz)",
    "37c87492753e6ba2dac9192ac35bc05b15caed394f5fd349a8abb9e93185c678": "the complete CIFAR-100 (full/cifar100.npz)",
}
"""Data files by sha256, for messages that name what a run read (README, "Data root")."""
COMMITTED_DATA: dict[str, str] = {
    "cifar10": "60897b61b4a26cf98d92b91c7024e5ee77f2696479db9becbd7584fba59bb364",
    "cifar100-20": "0e78546293ed6e4807d16b95bb0a52e2ae8a15c70e98198af19ff663a8f92ffd",
}
"""The data every run committed before runs recorded theirs was trained on (the offline subsets of the data root
CI and the study used). A run of the dataset on that file leaves `data_sha256` out of its identity, so those runs
stay the same runs and their plans stay as they were; a run on any other data names it, and is another run."""

_ANY_VALUE = object()  # a nested local field goes whatever its value


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config (`TrainConfig.snapshot()`) that makes the run: local fields (nested ones too)
    dropped, the `OPTIONAL_FIELDS` that sit at their defaults, and the data when it is `COMMITTED_DATA` (or not yet
    resolved)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items() if k not in LOCAL_FIELDS}
    if out.get("data_sha256") in (None, COMMITTED_DATA.get(str(out.get("dataset")))):
        out.pop("data_sha256", None)
    dropped = [(path, _ANY_VALUE) for path in LOCAL_PATHS if len(path) > 1] + list(OPTIONAL_FIELDS.items())
    for (*parents, leaf), default in dropped:
        section: Any = out
        for key in parents:
            section = section.get(key) if isinstance(section, dict) else None
        if isinstance(section, dict) and leaf in section and default in (_ANY_VALUE, section[leaf]):
            del section[leaf]
    return out


def changed_fields(old: dict[str, Any], new: dict[str, Any], resuming: bool = False) -> list[str]:
    """Fields whose difference makes `new` another run than `old`; `resuming` a killed run may extend its epochs."""
    free = LOCAL_FIELDS | (EXTENSIBLE_FIELDS if resuming else frozenset())
    old, new = identity(old), identity(new)
    return sorted(k for k in old.keys() | new.keys() if k not in free and old.get(k) != new.get(k))


def data_name(sha256: str | None) -> str:
    """A data digest as a reader knows it: its file where `KNOWN_DATA` has it, else the digest's head."""
    if sha256 is None:
        return "data not recorded"
    return KNOWN_DATA.get(sha256, f"data sha256 {sha256[:12]}…")


def explain(old: dict[str, Any], new: dict[str, Any], changed: list[str]) -> str:
    """The changed fields for a refusal; a change of data names both sources (old first)."""
    old, new = identity(old), identity(new)
    dataset = new.get("dataset", old.get("dataset", ""))

    def data(config: dict[str, Any]) -> str:
        return data_name(config.get("data_sha256", COMMITTED_DATA.get(dataset)))

    return ", ".join(f"data ({data(old)}, now {data(new)})" if k == "data_sha256" else k for k in changed)
