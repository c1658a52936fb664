"""Where a queued run computes: a GPU slot taken before CUDA starts, and paths that survive DVC's queue.

DVC's experiment queue starts several workers at once, each in a temporary copy of the
workspace. A worker that picks a GPU by querying every device creates a CUDA context on each,
and workers that start together pick the same one. Instead each run takes a *slot*, an
exclusive lock file (`gpu<g>-<k>.lock`, k < runs_per_gpu) shared by all workers of the machine,
and exports its GPU as CUDA_VISIBLE_DEVICES before CUDA is touched. The operating system
releases the lock when the process ends, so a killed worker never holds a slot.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from rlaux.config import QueueConfig

SLOTS_ENV_VAR = "RLAUX_SLOTS_DIR"


def slots_dir() -> Path:
    """The lock files' folder, one per machine and user ($RLAUX_SLOTS_DIR overrides it)."""
    return Path(os.environ.get(SLOTS_ENV_VAR) or Path(tempfile.gettempdir()) / f"rlaux-gpu-slots-{os.getuid()}")


@contextmanager
def gpu_slot(queue: QueueConfig, poll_seconds: float = 2.0) -> Iterator[str | None]:
    """Hold a free GPU slot (waiting for one) with CUDA_VISIBLE_DEVICES set to its GPU; yields
    the slot's name, or None when `queue.gpus` is 0. Slots fill GPU by GPU in turn, so the first
    runs spread over all GPUs. A CUDA_VISIBLE_DEVICES set by the user is the list of GPUs to use."""
    if queue.gpus == 0:
        yield None
        return
    if torch.cuda.is_initialized():
        raise RuntimeError("a GPU slot must be taken before CUDA starts in this process")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpu_ids = visible.split(",") if visible else [str(g) for g in range(queue.gpus)]
    if len(gpu_ids) < queue.gpus:
        raise ValueError(f"queue.gpus={queue.gpus} but CUDA_VISIBLE_DEVICES={visible!r} lists {len(gpu_ids)}")
    folder = slots_dir()
    folder.mkdir(parents=True, exist_ok=True)
    slots = [(g, k) for k in range(queue.runs_per_gpu) for g in range(queue.gpus)]
    while True:
        for g, k in slots:
            handle = open(folder / f"gpu{g}-{k}.lock", "w")  # noqa: SIM115 (held until the run ends)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu_ids[g]
            try:
                yield f"gpu{g}-{k}"
            finally:
                if visible is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = visible
                handle.close()
            return
        time.sleep(poll_seconds)


def workspace_path(path: Path, cwd: Path | None = None) -> Path:
    """An absolute path. A relative one names a path of the workspace, also from inside one of DVC's
    queued copies (`<workspace>/.dvc/tmp/exps/<tmp>/...`), which holds no git-ignored files such as ./data."""
    path, cwd = Path(path), Path(cwd or Path.cwd()).resolve()
    if path.is_absolute():
        return path
    for copy in (cwd, *cwd.parents):
        exps = copy.parent
        if exps.name == "exps" and exps.parent.name == "tmp" and exps.parent.parent.name == ".dvc":
            return exps.parent.parent.parent / cwd.relative_to(copy) / path
    return cwd / path
