"""Shared fixtures: the offline data root and a small, fast config on real CIFAR data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from rlaux.config import TrainConfig, build_config

REPO = Path(__file__).resolve().parent


def shared_data_root() -> Path:
    root = Path(os.environ.get("RLAUX_DATA", REPO.parent / "shared" / "data"))
    if not (root / "subsets" / "cifar10.npz").is_file():
        pytest.skip(
            f"offline CIFAR subsets not found under {root}; set RLAUX_DATA, or build them: rlaux subsets --root DIR"
        )
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    return shared_data_root()


@pytest.fixture
def small_config(data_root: Path, tmp_path: Path):
    """`small_config(method=..., epochs=...)`: CIFAR-10 subset, width 0.25, CPU, no progress bars."""
    torch.set_num_threads(2)

    def make(**overrides) -> TrainConfig:
        base = dict(
            dataset="cifar10",
            method="single",
            epochs=2,
            train_size=2000,
            test_size=1000,
            width=0.25,
            seed=0,
            data_root=str(data_root),
            device="cpu",
            progress=False,
            out=str(tmp_path / "run"),
        )
        return build_config(base, overrides)

    return make


@pytest.fixture
def one_thread():
    """Tiny ops: on a shared 2-core CPU, a second thread only spin-waits (and another test may have set 2)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def kill_after_first_epoch():
    """`kill(cfg)`: train until the epoch-1 checkpoint is on disk, then die as a killed process would;
    `kill(fn)` runs `fn()` (a train stage, say) the same way."""
    from rlaux import checkpoint
    from rlaux.training import train

    def kill(cfg: TrainConfig | Callable[[], object]) -> None:
        real_save = checkpoint.save

        def save_then_die(*args, **kwargs):
            real_save(*args, **kwargs)
            raise KeyboardInterrupt

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(checkpoint, "save", save_then_die)
            with pytest.raises(KeyboardInterrupt):
                cfg() if callable(cfg) else train(cfg)

    return kill
