"""Resumable checkpoints, written atomically (rlaux.io).

The checkpoint carries the loop, the method and the global RNG states; batch order and
augmentation are derived from (seed, epoch) and need no saving.

Reading is strict and side-effect free: `read_run` checks the whole run directory (files
present, archives intact, checkpoint format, config) before the loop writes anything, and
every problem is a `CheckpointError` (a `UserError`) naming the file and the fix.
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from rlaux import ledger, run_identity
from rlaux.errors import CheckpointError, CheckpointMismatch, one_line
from rlaux.io import atomic_write, write_csv

if TYPE_CHECKING:
    from rlaux.config import TrainConfig
    from rlaux.trainer import Trainer

CKPT, HISTORY = ledger.CHECKPOINT, ledger.HISTORY
BEST = "best.pt"
FORMAT = 2  # bump when the checkpoint's layout changes; other formats are refused, not misread
STATE_KEYS = ("format", "epochs_done", "history", "config", "model", "optimizer", "scheduler", "method", "rng")


class Stateful(Protocol):
    """What a checkpoint needs of a method: its state out and back in (`AuxMethod` meets it)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def refuse_new_run(out: Path, run: ledger.Verdict) -> None:
    """A new run does not start over another run's files (`run`, the ledger's verdict on `out`): a re-typed command
    must not destroy a run. `--overwrite` lets it go ahead (`clear` then removes those files, once every input is
    checked); `--resume` continues a run of this config, or returns its metrics."""
    what = {"resume": "an unfinished run", "finished": "a finished run"}.get(run.state, "another run's files")
    resume = {"resume": "--resume to continue it, ", "finished": "--resume to return its metrics, "}.get(run.state, "")
    why = f"; {run.reason}" if run.reason else ""
    raise CheckpointError(
        f"--out {out} already holds {what} ({', '.join(run.present)}{why}); nothing was changed: "
        f"pass {resume}--overwrite to replace it, or choose another --out"
    )


def clear(out: Path) -> None:
    """Remove a previous run's files (`--overwrite`), so none of them can be mistaken for the new run's."""
    for name in (*ledger.RUN_FILES, ledger.CODE_FILE):
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
    """Check the checkpoint of a run the ledger found resumable, before anything is written; returns its state.

    None when there is nothing to resume (a run killed before its first checkpoint). A damaged file, another
    format or a checkpoint of another config is refused.
    """
    out = Path(out)
    if not (out / CKPT).exists():  # nothing to resume: the ledger passed the rest (killed before a checkpoint)
        return None
    state = read(out / CKPT, cfg, map_location)
    _check_weights(state["model"], model, out / CKPT, _fix(out))
    missing = [name for name in (BEST, HISTORY) if not (out / name).is_file()]
    if missing:
        raise CheckpointError(f"cannot resume {out}: {', '.join(missing)} missing next to its {CKPT}; {_fix(out)}")
    read_weights(out / BEST, model, map_location)
    return state


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
