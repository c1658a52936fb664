"""Resumable checkpoints, written atomically (rlaux.io).

The checkpoint carries the loop, the method and the global RNG states; batch order and
augmentation are derived from (seed, epoch) and need no saving.

Reading is strict and side-effect free: `read_run` checks the whole run directory (files
present, archives intact, checkpoint format, config) before the loop writes anything, and
every problem is a `CheckpointError` (a `UserError`) naming the file and the fix.
"""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from rlaux import run_identity
from rlaux.errors import CheckpointError, CheckpointMismatch, one_line
from rlaux.io import atomic_write, write_csv

if TYPE_CHECKING:
    from rlaux.config import TrainConfig
    from rlaux.trainer import Trainer

CKPT = "checkpoint.pt"
BEST = "best.pt"
HISTORY = "history.csv"
CONFIG = "config.json"
METRICS = "metrics.json"
FORMAT = 2  # bump when the checkpoint's layout changes; other formats are refused, not misread
STATE_KEYS = ("format", "epochs_done", "history", "config", "model", "optimizer", "scheduler", "method", "rng")


class Stateful(Protocol):
    """What a checkpoint needs of a method: its state out and back in (`AuxMethod` meets it)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def check_new_run(out: Path, cfg: TrainConfig, overwrite: bool = False) -> None:
    """Refuse to start a run over another run's files: a re-typed command must not destroy a run.

    `overwrite` lets it go ahead (`clear` then removes those files, once every input is checked).
    """
    out = Path(out)
    present = [name for name in run_identity.RUN_FILES if (out / name).exists()]
    if not present or overwrite:
        return
    if (out / CKPT).exists():
        what = "an unfinished run"
    elif (out / METRICS).is_file():
        what = "a finished run"
    else:
        what = "another run's files"
    try:
        old, new = json.loads((out / CONFIG).read_text()), cfg.snapshot()
        same = not run_identity.changed_fields(old, new, resuming=what != "a finished run")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        same = False  # what --resume would accept; anything else only --overwrite may replace
    resume = {"an unfinished run": "--resume to continue it, ", "a finished run": "--resume to return its metrics, "}
    other = ", of another config" if (out / CONFIG).is_file() and not same else ""
    raise CheckpointError(
        f"--out {out} already holds {what} ({', '.join(present)}{other}); nothing was changed: "
        f"pass {resume.get(what, '') if same else ''}--overwrite to replace it, or choose another --out"
    )


def clear(out: Path) -> None:
    """Remove a previous run's files (`--overwrite`), so none of them can be mistaken for the new run's."""
    for name in run_identity.RUN_FILES:
        (Path(out) / name).unlink(missing_ok=True)


def save(out: Path, epochs_done: int, history: list[dict], trainer: Trainer, method: Stateful) -> None:
    state = {
        "format": FORMAT,
        "epochs_done": epochs_done,
        "history": history,
        "config": trainer.cfg.snapshot(),
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "method": method.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            # the run's own GPU only: a resumed run may land on another GPU (another Ray node) and
            # must continue the same stream there
            "cuda": torch.cuda.get_rng_state(trainer.device) if trainer.device.type == "cuda" else None,
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        },
    }
    # checkpoint first: a run killed in between resumes from the checkpoint and rewrites history.csv,
    # so history.csv without checkpoint.pt means the checkpoint was removed (refused on --resume)
    atomic_torch_save(state, Path(out) / CKPT)
    write_csv(Path(out) / HISTORY, history)


def finish(out: Path) -> None:
    """A completed run keeps best.pt, metrics and history; its checkpoint (a second copy of the
    weights, plus optimiser and agent) goes, which makes a paper run about half as large on disk."""
    (Path(out) / CKPT).unlink(missing_ok=True)


def finished(out: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The metrics of a run that completed in `out` under the same config, else None (resume it).

    A completed run of another config raises `CheckpointMismatch`, as its checkpoint would; a damaged
    or incomplete one a `CheckpointError`.
    """
    out = Path(out)
    if (out / CKPT).exists() or not (out / METRICS).is_file():
        return None
    metrics = run_identity.finished(out)
    if metrics is None:
        missing = [name for name in run_identity.FINISHED_FILES if not (out / name).is_file()]
        if missing and isinstance(run_identity.read_json(out / METRICS), dict):
            raise CheckpointError(f"cannot resume {out}: its finished run lacks {', '.join(missing)}; {_fix(out)}")
        raise CheckpointError(f"{out / METRICS} is damaged (not a mapping with the run's config); {_fix(out)}")
    old, new = metrics.pop("config"), cfg.snapshot()
    changed = run_identity.changed_fields(old, new)
    if changed:
        raise CheckpointMismatch(
            f"cannot resume {out}: it holds a finished run with different {run_identity.explain(old, new, changed)}; "
            f"use a new --out, or --overwrite instead of --resume to start over"
        )
    return metrics


def _fix(out: Path) -> str:
    return f"start {out} over with --overwrite instead of --resume, or use a new --out"


def _torch_load(path: Path, fix: str, **kw: Any) -> Any:
    """torch.load with the archive checked first (torch skips CRC checks); any failure is a CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; {fix}")
    try:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint (no zip archive: empty, truncated or overwritten); {fix}"
            )
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            raise CheckpointError(f"{path} is corrupted (member {bad} fails its CRC check); {fix}")
        return torch.load(path, **kw)
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(
            one_line(
                f"{path} cannot be loaded ({type(err).__name__}: {err}); it is truncated, "
                f"corrupted or not a checkpoint; {fix}"
            )
        ) from None


def read(path: Path, cfg: TrainConfig | None = None, map_location: Any = "cpu", fix: str = "") -> dict[str, Any]:
    """Load and check a checkpoint file: intact archive, this format, complete, and (given cfg) the same config."""
    path = Path(path)
    fix = fix or _fix(path.parent)
    state = _torch_load(path, fix, map_location=map_location, weights_only=False)
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(
            f"{path} was written by an older rlaux (no checkpoint format number) or is not an rlaux checkpoint; {fix}"
        )
    if state["format"] != FORMAT:
        raise CheckpointError(
            f"{path} was written by another rlaux version (checkpoint format {state['format']!r}, "
            f"this version reads {FORMAT}); {fix}"
        )
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete (lacks {', '.join(missing)}); {fix}")
    done, history, old = state["epochs_done"], state["history"], state["config"]
    if not isinstance(done, int) or done < 1 or not isinstance(history, list) or len(history) != done:
        raise CheckpointError(f"{path} is inconsistent (epochs_done {done!r} vs {len(history)} history rows); {fix}")
    if not isinstance(old, dict):
        raise CheckpointError(f"{path} holds no config mapping; {fix}")
    if cfg is not None:
        changed = run_identity.changed_fields(old, cfg.snapshot(), resuming=True)
        if changed:
            raise CheckpointMismatch(
                f"cannot resume {path.parent}: its checkpoint was written with different "
                f"{run_identity.explain(old, cfg.snapshot(), changed)}; use a new --out, or --overwrite instead of "
                f"--resume to start over"
            )
    return state


def _check_weights(weights: Any, model: torch.nn.Module, path: Path, fix: str) -> None:
    """Same keys, shapes and dtypes as `model`'s state_dict (load_state_dict would cast dtypes silently)."""
    expected = model.state_dict()
    if not isinstance(weights, dict) or set(weights) != set(expected):
        raise CheckpointError(f"{path} does not hold this run's model weights (other keys); {fix}")
    for k, v in weights.items():
        if not isinstance(v, torch.Tensor) or v.shape != expected[k].shape or v.dtype != expected[k].dtype:
            raise CheckpointError(f"{path} does not fit this run's model ({k} has another shape or dtype); {fix}")


def read_weights(path: Path, model: torch.nn.Module, map_location: Any = "cpu", fix: str = "") -> dict[str, Any]:
    """Load and check a state_dict file (best.pt) against `model`; a damaged or mismatched file is a CheckpointError."""
    path = Path(path)
    fix = fix or _fix(path.parent)
    weights = _torch_load(path, fix, map_location=map_location, weights_only=True)
    _check_weights(weights, model, path, fix)
    return weights


def read_run(out: Path, cfg: TrainConfig, model: torch.nn.Module, map_location: Any = "cpu") -> dict[str, Any] | None:
    """Check a run directory for `--resume` before anything is written; returns its checkpoint state.

    None when there is nothing to resume (no directory, or a run killed before its first
    checkpoint). A directory holding a history but no checkpoint, a damaged file, another
    format or another config is refused.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"run directory {out} is a file; use another --out")
    if not (out / CKPT).exists():
        if (out / HISTORY).exists():
            raise CheckpointError(f"cannot resume {out}: it holds {HISTORY} but its {CKPT} is missing; {_fix(out)}")
        if (out / CONFIG).exists():  # killed before its first checkpoint: only the same config may start over
            _check_config_file(out, cfg)
        return None
    state = read(out / CKPT, cfg, map_location)
    _check_weights(state["model"], model, out / CKPT, _fix(out))
    missing = [name for name in (BEST, HISTORY, CONFIG) if not (out / name).is_file()]
    if missing:
        raise CheckpointError(f"cannot resume {out}: {', '.join(missing)} missing next to its {CKPT}; {_fix(out)}")
    try:
        json.loads((out / CONFIG).read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(one_line(f"{out / CONFIG} is not valid JSON ({err}); {_fix(out)}")) from None
    read_weights(out / BEST, model, map_location)
    return state


def _check_config_file(out: Path, cfg: TrainConfig) -> None:
    """config.json of a run killed before its first epoch: damaged or another config is refused."""
    try:
        old = json.loads((out / CONFIG).read_text())
        changed = run_identity.changed_fields(old, cfg.snapshot(), resuming=True)
    except (ValueError, UnicodeDecodeError, AttributeError) as err:
        raise CheckpointError(one_line(f"{out / CONFIG} is not a run's config ({err}); {_fix(out)}")) from None
    if changed:
        raise CheckpointMismatch(
            f"cannot resume {out}: its {CONFIG} was written with different {run_identity.explain(old, cfg.snapshot(), changed)}; "
            f"use a new --out, or --overwrite instead of --resume to start over"
        )


def restore(state: dict[str, Any], out: Path, trainer: Trainer, method: Stateful) -> tuple[int, list[dict]]:
    """Put a checked checkpoint's state into the loop; returns (epochs done, history)."""
    try:
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scheduler.load_state_dict(state["scheduler"])
        method.load_state_dict(state["method"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        if rng["cuda"] is not None:
            if trainer.device.type != "cuda":
                raise ValueError("the checkpoint was written on a GPU; resume it with --device cuda")
            torch.cuda.set_rng_state(rng["cuda"].cpu(), trainer.device)  # RNG states live on the CPU
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise CheckpointError(
            one_line(f"{Path(out) / CKPT} does not fit this run ({type(err).__name__}: {err}); {_fix(Path(out))}")
        ) from None
    return state["epochs_done"], state["history"]
