"""Host synchronisation points per epoch: a constant, not one per batch (issue 12).

On a GPU every `.item()`, `.cpu()`, `.numpy()`, `.tolist()`, Python truth value or number of a
tensor, and every tensor built from host arrays or lists, makes the CPU wait for the GPU (or
copies data across). On the CPU nothing waits, so the calls themselves are counted: a torch
function mode sees each one, with the first caller outside torch. An epoch on twice the data
(twice the batches, rollouts and PPO minibatches) must make exactly as many calls, except SB3's
own per-minibatch logging inside `PPO.train`, which is reported apart and allowed to grow.
"""

from __future__ import annotations

import numbers
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from rlaux.config import build_config
from rlaux.evaluation import evaluate_epoch
from rlaux.training import build_run, train_epoch

SYNCING = {"item", "cpu", "numpy", "tolist", "__bool__", "__int__", "__float__", "__index__", "__format__", "__array__"}
FROM_HOST = {"tensor", "as_tensor"}
SB3_LOGGING = {
    ("ppo_mask.py", "train"),  # MaskablePPO.train's per-minibatch `.item()` logging
    ("buffer.py", "values"),  # the explained variance it logs per update, from the rollout's values
    ("buffer.py", "returns"),  # and returns, which it reads with numpy
}
METHODS = ("single", "human", "random", "maxl", "wa-maxl", "rl", "wa-rl")
TORCH_DIR = str(Path(torch.__file__).parent)


class HostSyncCounter(TorchFunctionMode):
    """Counts calls that would synchronise with (or copy from) the host, by first caller outside torch."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[str, str, str]] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        host_data = name in FROM_HOST and not isinstance(args[0], torch.Tensor | numbers.Number)
        if name in SYNCING or host_data:
            frame = sys._getframe(1)
            while frame.f_code.co_filename.startswith(TORCH_DIR):
                frame = frame.f_back
            self.calls[(name, Path(frame.f_code.co_filename).name, frame.f_code.co_name)] += 1
        return func(*args, **(kwargs or {}))

    def split(self) -> tuple[int, int]:
        """(syncs that count, SB3's own per-minibatch logging)."""
        logging = sum(n for (_, file, fn), n in self.calls.items() if (file, fn) in SB3_LOGGING)
        return sum(self.calls.values()) - logging, logging


def epoch_syncs(method: str, train_size: int, data_root: Path, device: str = "cpu") -> HostSyncCounter:
    """Count one whole epoch (agent epoch, main pass, meta pass, evaluation) after a warm-up epoch."""
    dataset = "cifar100-20" if method == "human" else "cifar10"
    cfg = build_config(
        {
            "dataset": dataset,
            "method": method,
            "width": 0.0625,
            "train_size": train_size,
            "test_size": 100,
            "device": device,
            "progress": False,
            "data_root": str(data_root),
            "rl": {"n_steps": 100, "ppo_batch_size": 50, "n_epochs": 2, "feature_dim": 16},
        }
    )
    trainer, aux = build_run(cfg)
    train_epoch(trainer, aux, 0)
    with HostSyncCounter() as counter:
        train_epoch(trainer, aux, 1)
        evaluate_epoch(trainer.model, trainer.data, trainer.augment.normalize, cfg.eval_batch_size)
    return counter


@pytest.mark.parametrize("method", METHODS)
def test_host_syncs_per_epoch_do_not_grow_with_the_batches(method, data_root):
    small, large = (epoch_syncs(method, n, data_root) for n in (300, 600))  # 3 and 6 batches of 100
    (n_small, log_small), (n_large, log_large) = small.split(), large.split()
    grown = {k: (small.calls[k], v) for k, v in large.calls.items() if v != small.calls[k]}
    assert n_large == n_small, f"{method}: {n_small} -> {n_large} syncs per epoch; grew: {grown}"
    if method in ("rl", "wa-rl"):
        assert log_large > log_small > 0  # SB3's logging is still there, and it is all that grows


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ("single", "maxl", "rl"))
def test_cuda_sync_debug_mode_finds_no_sync_that_grows(method, data_root, recwarn):
    """On a GPU: torch's own sync detector, warning per synchronising call, outside SB3's logging."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        counts = []
        for n in (300, 600):
            recwarn.clear()
            epoch_syncs(method, n, data_root, "cuda")
            counts.append(sum(Path(w.filename).name not in {f for f, _ in SB3_LOGGING} for w in recwarn))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert counts[0] == counts[1], counts
