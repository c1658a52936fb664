"""Resumable checkpoints, written atomically (rlaux.io).

The checkpoint carries the loop, the method and the global RNG states; batch order and
augmentation are derived from (seed, epoch) and need no saving.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlaux.io import atomic_write, write_csv

if TYPE_CHECKING:
    from rlaux.config import TrainConfig
    from rlaux.methods.base import AuxMethod
    from rlaux.training import Trainer

CKPT = "checkpoint.pt"
# Keys that may differ between a killed run and its resumption (more epochs = extending a run).
# Not `device`: CPU and CUDA generators draw different batch orders.
RESUME_FREE_KEYS = {"progress", "out", "data_root", "download", "epochs"}


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


class CheckpointMismatch(ValueError):
    """The checkpoint on disk belongs to a run with another config."""


def exists(out: Path) -> bool:
    return (Path(out) / CKPT).is_file()


def save(out: Path, epochs_done: int, history: list[dict], trainer: Trainer, method: AuxMethod) -> None:
    state = {
        "epochs_done": epochs_done,
        "history": history,
        "config": trainer.cfg.snapshot(),
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "method": method.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if trainer.device.type == "cuda" else [],
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        },
    }
    write_csv(Path(out) / "history.csv", history)
    atomic_torch_save(state, Path(out) / CKPT)


def load(out: Path, cfg: TrainConfig, trainer: Trainer, method: AuxMethod) -> tuple[int, list[dict]]:
    """Restore a killed run; refuses a checkpoint written under a different config."""
    state = torch.load(Path(out) / CKPT, map_location=trainer.device, weights_only=False)
    old, new = state["config"], cfg.snapshot()
    changed = sorted(k for k in new.keys() | old.keys() if k not in RESUME_FREE_KEYS and old.get(k) != new.get(k))
    if changed:
        raise CheckpointMismatch(f"cannot resume {out}: its checkpoint was written with different {', '.join(changed)}; "
                         f"use a new --out or drop --resume to start over")
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    method.load_state_dict(state["method"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"]:
        torch.cuda.set_rng_state_all([state.cpu() for state in rng["cuda"]])  # RNG states live on the CPU
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    return state["epochs_done"], state["history"]
