"""Where and how a run executes: its device, deterministic kernels and the machine record.

Run-time facts that change no number on a CPU (a GPU's determinism is set here too); every layer may
read them. Paths live in `rlaux.io`, which needs no torch.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from rlaux.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """auto: CUDA when present. The first visible GPU: a dispatched run's is the one Ray gave it
    (`rlaux.dispatch`, which sets CUDA_VISIBLE_DEVICES before CUDA starts)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available here; use --device cpu or auto")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", 0)


def make_deterministic(device: torch.device, warn_only: bool = True) -> None:
    """Same seed, same metrics on a GPU too (CPU kernels are deterministic already).

    A non-deterministic op warns (`warn_only=False`: fails, as the GPU test runs it). PyTorch's
    deterministic mode also fills every new allocation with NaN to expose reads of
    uninitialised memory, which costs time and never changes a correct result: turned off.
    """
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]  # set at run time; not in torch's stubs
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
        torch.cuda.set_device(device)


def machine(device: str = "cpu") -> dict[str, Any]:
    """Where a run trained: node, CPU and GPU model, torch threads, the GPUs it could see, the Ray node
    (under `rlaux dispatch`), torch and python versions, and when it finished."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else ""
    ray = sys.modules.get("ray")
    return {
        "node": platform.node(),
        "ray_node": ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else "",
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
