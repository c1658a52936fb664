"""Host synchronisation points per epoch: a constant, not one per batch (issues 12 and 19).

`rlaux.syncs.SyncCounter` sees, on a CPU, what would make a GPU run wait: values read on the host
(`.item()`, `bool()`, `.cpu()`, `.numpy()`, `.tolist()`, printing), value-dependent shapes (`nonzero`,
boolean-mask indexing), and blocking copies from the host (`torch.tensor(0.0, device=d)`), each at its
calling line, library code (SB3, sb3-contrib, torch.optim) included. An epoch on twice the data (twice the
batches, rollouts and PPO minibatches) must synchronise exactly as often, at exactly the same lines.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from rlaux.config import build_config
from rlaux.evaluation import evaluate_epoch
from rlaux.syncs import CudaSyncWarnings, SyncCounter
from rlaux.training import build_run, train_epoch

METHODS = ("single", "human", "random", "maxl", "wa-maxl", "rl", "wa-rl")


pytestmark = pytest.mark.usefixtures("one_thread")


def epoch_syncs(method: str, train_size: int, data_root: Path, device: str = "cpu") -> Counter[tuple[str, str]]:
    """(kind, line) -> count over one whole epoch (agent epoch, main pass, meta pass, evaluation) after a warm-up
    epoch; on CUDA, torch's own warnings by line."""
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
    counter = CudaSyncWarnings() if device == "cuda" else SyncCounter()
    with counter:
        train_epoch(trainer, aux, 1)
        evaluate_epoch(trainer.model, trainer.data, trainer.augment.normalize, cfg.eval_batch_size)
    return counter.counts  # type: ignore[return-value]


def growth(small: Counter, large: Counter) -> str:
    grown = {k: (small[k], n) for k, n in large.items() if n > small[k]}
    return "\n".join(f"  {a} -> {b}  {k}" for k, (a, b) in sorted(grown.items(), key=lambda kv: -kv[1][1]))


@pytest.mark.parametrize("method", METHODS)
def test_host_syncs_per_epoch_do_not_grow_with_the_batches(method, data_root):
    small, large = (epoch_syncs(method, n, data_root) for n in (300, 600))  # 3 and 6 batches of 100
    assert large == small, (
        f"{method}: {small.total()} -> {large.total()} host syncs per epoch from 3 to 6 batches; grew:\n"
        + growth(small, large)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_sync_debug_mode_finds_no_sync_that_grows(method, data_root):
    """On a GPU: torch's own sync detector (a warning per synchronising call), library code included."""
    small, large = (epoch_syncs(method, n, data_root, "cuda") for n in (300, 600))
    assert sum(large.values()) == sum(small.values()), growth(small, large)


# ---------------------------------------------------------------- the counter itself
def syncs_of(fn) -> Counter[str]:
    with SyncCounter() as counter:
        fn()
    return Counter(kind for kind, _ in counter.counts.elements())


def test_counter_sees_each_kind_of_sync_at_its_line():
    x = torch.randn(6)
    mask = x > 0
    assert syncs_of(lambda: x.sum().item()) == {"item": 1}
    assert syncs_of(lambda: bool(x.sum() > 0)) == {"item": 1}
    assert syncs_of(lambda: f"{x.mean():.3f}") == {"item": 1}
    assert syncs_of(lambda: x[mask]) == {"bool-index": 1}
    assert syncs_of(lambda: mask.nonzero()) == {"nonzero": 1}
    assert syncs_of(lambda: torch.tensor(0.0, device=x.device)) == {"from-host": 1}
    assert syncs_of(lambda: torch.as_tensor(np.ones(3), device=x.device)) == {"from-host": 1}
    assert syncs_of(lambda: x.to("cpu")) == {"to-host": 1}
    assert syncs_of(lambda: x.cpu().numpy()) == {"to-host": 1}  # one copy; reading the host copy is free
    assert syncs_of(lambda: x.tolist()) == {"to-host": 1}
    assert syncs_of(lambda: str(x)) == {"print": 1}
    assert syncs_of(lambda: torch.zeros(6).copy_(x)) == {"to-host": 1}  # device values into a host tensor
    assert syncs_of(lambda: x[torch.from_numpy(np.arange(3))]) == {"from-host": 1}  # host indices, copied over
    with SyncCounter() as counter:
        x.sum().item()
    ((_, site),) = counter.counts
    assert site.startswith("tests/test_host_sync.py:") and site.endswith(
        "(test_counter_sees_each_kind_of_sync_at_its_line)"
    )


def test_counter_lets_pass_what_stays_on_the_device_or_on_the_host():
    x = torch.randn(6)
    mask = x > 0
    param = torch.nn.Parameter(torch.randn(3))
    adam = torch.optim.Adam([param])
    param.grad = torch.ones(3)
    adam.step()  # its step count is created on the host, as torch keeps it on a GPU too

    def quiet() -> None:
        torch.where(mask, x, -1e8)  # Python scalars travel as kernel arguments
        x.masked_fill(~mask, 0.0)
        x.to(x.device)  # a torch.device names the run's device: already there
        torch.zeros(3, device=x.device)
        torch.tensor(2.0).item()  # host data read on the host
        x[torch.from_numpy(np.arange(3)).to(x.device, non_blocking=True)]
        adam.step()  # `step.item()` inside Adam reads a host tensor

    assert syncs_of(quiet) == {}
