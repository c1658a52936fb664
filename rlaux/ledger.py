"""The run ledger: what a run directory holds, decided in one place and without torch.

`verdict(run_dir, snapshot)` is the only way a caller decides about an existing run directory:
`rlaux train` (a new run refuses to start over one, `--resume` continues or returns it), a DVC train
stage and `rlaux dispatch` (`experiments.run_experiment` keeps, resumes or discards), and the accuracy
gates (`benchmarks/test_accuracy.py` reuse the smoke pipeline's run). A run is the same run when its
results version (`CODE_FILE`, its method family's) and its identity (`run_identity`: config, data read) are the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rlaux import run_identity

CODE_FILE = "code.json"
"""In each run directory: the results version the run trained under (every run writes it when it starts)."""
CHECKPOINT, CONFIG, HISTORY, METRICS = "checkpoint.pt", "config.json", "history.csv", "metrics.json"
RUN_FILES = (CONFIG, "data.json", HISTORY, CHECKPOINT, "best.pt", METRICS, "timing.json", "machine.json")
"""What a run writes into its directory: a new run never starts over any of them unless told to."""
FINISHED_FILES = (HISTORY, CONFIG)
"""What a finished run keeps beside metrics.json (its checkpoint is gone). Not its weights: best.pt stays on
the machine that trained it (git holds the record), so a clone's committed run is finished without them."""

State = Literal["new", "resume", "finished", "stale", "damaged"]


@dataclass(frozen=True)
class Verdict:
    """What a run directory holds for a config: `new` (nothing of a run), `resume` (a killed run of this config and
    results version), `finished` (that run, complete: `metrics`), `stale` (a run of another results version or
    config: `reason` names what differs) or `damaged` (a run's files missing or unreadable: `reason` says which).
    Stale runs may be discarded by a pipeline; only a person may discard a damaged one (`--overwrite`)."""

    state: State
    reason: str = ""
    metrics: dict[str, Any] | None = field(default=None, compare=False)
    present: tuple[str, ...] = ()
    """The run's files found, for messages."""


def code_record(method: str) -> dict[str, str]:
    """What a run of `method` writes to `CODE_FILE` when it starts: its family's results version."""
    return {"code_version": run_identity.results_version(method)}


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def finished(run_dir: Path) -> dict[str, Any] | None:
    """The metrics (with the config under "config") of a complete run in `run_dir`, whatever its config, else None.

    Complete: metrics.json holds a mapping with a config, no checkpoint is left (a run under way keeps one), and
    history.csv and config.json are there."""
    run_dir = Path(run_dir)
    metrics = read_json(run_dir / METRICS)
    if (
        not isinstance(metrics, dict)
        or not isinstance(metrics.get("config"), dict)
        or (run_dir / CHECKPOINT).exists()
        or not all((run_dir / name).is_file() for name in FINISHED_FILES)
    ):
        return None
    return metrics


def verdict(run_dir: Path, snapshot: dict[str, Any]) -> Verdict:
    """What `run_dir` holds for the run whose resolved config is `snapshot` (`TrainConfig.snapshot()`).

    Read in this order: nothing there; the results version (another one makes every file stale); a finished run
    (metrics.json and no checkpoint) of the same identity; a killed run (its config.json, written first) of the same
    identity, whose epochs may grow. The checkpoint's own contents (archive, format, weights) are checked by
    `checkpoint.read_run` when the run resumes."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        return Verdict("damaged", f"{run_dir} is a file, not a run directory")
    present = tuple(name for name in (*RUN_FILES, CODE_FILE) if (run_dir / name).exists())
    if not present:
        return Verdict("new")
    recorded, now = read_json(run_dir / CODE_FILE), code_record(snapshot["method"])
    if recorded != now:
        was = recorded.get("code_version") if isinstance(recorded, dict) else None
        why = (
            f"it was trained under results version {was!r}, and this code computes {now['code_version']!r}"
            if was
            else f"it records no results version ({CODE_FILE}: a run of an older rlaux, or not a run)"
        )
        config = read_json(run_dir / CONFIG)
        if isinstance(config, dict) and (changed := run_identity.changed_fields(config, snapshot, resuming=True)):
            why = (
                f"its {CONFIG} was written with different {run_identity.explain(config, snapshot, changed)}, and {why}"
            )
        return Verdict("stale", why, present=present)
    if (run_dir / METRICS).exists() and not (run_dir / CHECKPOINT).exists():
        metrics = finished(run_dir)
        if metrics is None:
            missing = [name for name in FINISHED_FILES if not (run_dir / name).is_file()]
            why = f"its finished run lacks {', '.join(missing)}" if missing else f"{run_dir / METRICS} is damaged"
            return Verdict("damaged", why, present=present)
        old = metrics.pop("config")
        changed = run_identity.changed_fields(old, snapshot)
        if changed:
            why = f"it holds a finished run with different {run_identity.explain(old, snapshot, changed)}"
            return Verdict("stale", why, present=present)
        return Verdict("finished", metrics=metrics, present=present)
    config = read_json(run_dir / CONFIG)
    if config is None and present == (CODE_FILE,):
        return Verdict("new", "killed before it wrote its config", present=present)
    if not isinstance(config, dict):
        return Verdict("damaged", f"{run_dir / CONFIG} is missing or not a config mapping", present=present)
    changed = run_identity.changed_fields(config, snapshot, resuming=True)
    if changed:
        why = f"its {CONFIG} was written with different {run_identity.explain(config, snapshot, changed)}"
        return Verdict("stale", why, present=present)
    if (run_dir / HISTORY).exists() and not (run_dir / CHECKPOINT).exists():
        return Verdict("damaged", f"it holds {HISTORY} but its {CHECKPOINT} is missing", present=present)
    return Verdict("resume", present=present)
