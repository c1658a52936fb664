"""What makes two runs the same run, in one place (no torch).

A run is its config plus the version of the numbers the code computes. Every config field is
classified once, here, and every caller asks this module: the plans DVC tracks, adoption of a
finished run, `--resume` of a killed one, `--overwrite`'s refusal and `rlaux dispatch`.

The results version replaces hashing source text: moving code between files keeps committed runs;
a change that moves any number must bump `RESULTS_VERSION`, and the committed fingerprint of each
method's tiny float64 run (tests/results_fingerprint.json, compared in CI) fails until it does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_VERSION = "d9dcaab0c0ef7b39"
"""Bump when any computed number moves (then re-record: python tests/test_results_version.py --record).
Version 1 keeps the name it had as a source hash, the one the committed 10-pass study trained under,
so those 75 runs stay valid; later versions may be any new string (e.g. "2")."""

LOCAL_FIELDS = frozenset({"data_root", "download", "progress", "queue", "out"})
"""Machine-local: where the data and the run live, downloading, progress bars, GPU packing. They never
make another run, so plans leave them out and a run may be resumed or adopted under other values."""
EXTENSIBLE_FIELDS = frozenset({"epochs"})
"""A killed run may be resumed with more epochs (extending it); a finished run of other epochs is another run."""
RUN_FIELDS = frozenset(
    {
        "dataset",
        "method",
        "lam",
        "batch_size",
        "lr",
        "momentum",
        "lr_step",
        "lr_gamma",
        "focal_gamma",
        "primary_loss_scale",
        "psi",
        "train_size",
        "test_size",
        "val_fraction",
        "width",
        "seed",
        "offline_subsets",
        "data_sha256",  # the data read (rlaux.data_source): the same config on another data file is another run
        "device",  # CPU and CUDA generators draw different batch orders
        "precision",
        "channels_last",
        "eval_batch_size",
        "maxl",
        "rl",
        "errata",
    }
)
"""Fields whose change makes another run. A new config field must be added to one of the three sets
(tests/test_run_identity.py fails until it is)."""

OPTIONAL_FIELDS: dict[tuple[str, ...], Any] = {
    ("momentum",): 0.0,
    ("rl", "reward"): "paper",
    ("rl", "oracle_noise"): 0.0,
    ("rl", "reward_pairing"): False,
    ("rl", "credit"): "paper",
    ("rl", "train_agent"): True,
}
"""Fields added after runs were committed, with their defaults. At its default such a field is left out of a
run's identity, so a run trained before the field existed is the same run as one that names the default (no plan
changes, nothing retrains). Safe: a default that moved a number would move a fingerprint, which forces a new
RESULTS_VERSION. A new field with a default that keeps every number belongs here."""

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

CODE_FILE = "code.json"
"""In each run directory of a DVC train stage: the results version it trained under."""
RUN_FILES = (
    "config.json",
    "data.json",
    "history.csv",
    "checkpoint.pt",
    "best.pt",
    "metrics.json",
    "timing.json",
    "machine.json",
)
"""What a run writes into its directory: a new run never starts over any of them unless told to."""
FINISHED_FILES = ("history.csv", "config.json")
"""What a finished run keeps beside metrics.json (its checkpoint is gone). Not its weights: best.pt stays on
the machine that trained it (git holds the record), so a clone's committed run is finished without them."""


def code_record() -> dict[str, str]:
    """What a train stage writes to `CODE_FILE` and compares to adopt a run."""
    return {"code_version": RESULTS_VERSION}


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config (`TrainConfig.snapshot()`) that makes the run: local fields dropped, the
    `OPTIONAL_FIELDS` that sit at their defaults, and the data when it is `COMMITTED_DATA` (or not yet resolved)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items() if k not in LOCAL_FIELDS}
    if out.get("data_sha256") in (None, COMMITTED_DATA.get(str(out.get("dataset")))):
        out.pop("data_sha256", None)
    for (*parents, leaf), default in OPTIONAL_FIELDS.items():
        section: Any = out
        for key in parents:
            section = section.get(key) if isinstance(section, dict) else None
        if isinstance(section, dict) and leaf in section and section[leaf] == default:
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


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def finished(run_dir: Path) -> dict[str, Any] | None:
    """The metrics of a complete, finished run in `run_dir` (with its config under "config"), else None.

    Finished: metrics.json holds a mapping with a config, no checkpoint is left (a run under way keeps
    one), and history.csv and config.json are there. Read without torch.
    """
    run_dir = Path(run_dir)
    metrics = read_json(run_dir / "metrics.json")
    if (
        not isinstance(metrics, dict)
        or not isinstance(metrics.get("config"), dict)
        or (run_dir / "checkpoint.pt").exists()
        or not all((run_dir / name).is_file() for name in FINISHED_FILES)
    ):
        return None
    return metrics
