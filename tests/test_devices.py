"""GPU slots for queued runs and paths inside DVC's queued copies (no GPU needed: the logic is the locks)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path

import pytest

from rlaux.config import QueueConfig
from rlaux.devices import gpu_slot, workspace_path


def _worker(queue: QueueConfig, slots_dir: str, visible: str | None, report, release) -> None:
    os.environ["RLAUX_SLOTS_DIR"] = slots_dir
    if visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    with gpu_slot(queue, poll_seconds=0.02) as slot:
        report.put((slot, os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid()))
        release.wait(30)


class Workers:
    """Worker processes that take a slot, report it, and hold it until released."""

    def __init__(self, tmp_path: Path, queue: QueueConfig, visible: str | None = None) -> None:
        self.ctx = mp.get_context("fork")
        self.args = (queue, str(tmp_path / "slots"), visible)
        self.report = self.ctx.Queue()
        self.procs: list = []

    def start(self, n: int) -> list:
        for _ in range(n):
            release = self.ctx.Event()
            proc = self.ctx.Process(target=_worker, args=(*self.args, self.report, release))
            proc.start()
            self.procs.append((proc, release))
        return [self.report.get(timeout=30) for _ in range(n)]

    def close(self) -> None:
        for proc, release in self.procs:
            if proc.is_alive():  # a killed waiter never acknowledges set(), which would block here
                release.set()
            proc.join(10)


@pytest.fixture
def workers(tmp_path):
    made: list[Workers] = []

    def make(queue: QueueConfig, visible: str | None = None) -> Workers:
        made.append(Workers(tmp_path, queue, visible))
        return made[-1]

    yield make
    for w in made:
        w.close()


def test_two_runs_per_gpu_fill_every_gpu_then_wait(workers):
    pool = workers(QueueConfig(gpus=2, runs_per_gpu=2))
    first = pool.start(2)
    assert sorted(gpu for _, gpu, _ in first) == ["0", "1"]  # the first runs spread over the GPUs
    held = first + pool.start(2)
    assert sorted(slot for slot, _, _ in held) == ["gpu0-0", "gpu0-1", "gpu1-0", "gpu1-1"]
    assert sorted(gpu for _, gpu, _ in held) == ["0", "0", "1", "1"]

    release = pool.ctx.Event()  # a fifth run waits for a free slot ...
    fifth = pool.ctx.Process(target=_worker, args=(*pool.args, pool.report, release))
    fifth.start()
    with pytest.raises(Exception):  # noqa: B017 (queue.Empty)
        pool.report.get(timeout=0.5)
    slot, gpu, pid = held[2]
    os.kill(pid, signal.SIGKILL)  # ... and gets the slot a killed run held
    assert pool.report.get(timeout=30)[:2] == (slot, gpu)
    release.set()
    fifth.join(10)


def test_slots_use_the_gpus_the_user_made_visible(workers):
    pool = workers(QueueConfig(gpus=2, runs_per_gpu=1), visible="5,7")
    assert sorted(gpu for _, gpu, _ in pool.start(2)) == ["5", "7"]


def test_no_slots_leaves_the_environment_alone(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with gpu_slot(QueueConfig()) as slot:
        assert slot is None and "CUDA_VISIBLE_DEVICES" not in os.environ


def test_slot_is_given_back_with_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RLAUX_SLOTS_DIR", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    queue = QueueConfig(gpus=1, runs_per_gpu=1)
    for _ in range(2):  # the second run gets the slot the first gave back
        with gpu_slot(queue) as slot:
            assert slot == "gpu0-0" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert "CUDA_VISIBLE_DEVICES" not in os.environ
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(ValueError, match=r"queue\.gpus=2"), gpu_slot(QueueConfig(gpus=2)):
        pass


def test_relative_paths_resolve_to_the_workspace_also_inside_dvc_queued_copies(tmp_path):
    ws = tmp_path / "ws"
    queued = ws / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    (queued / "sub").mkdir(parents=True)
    assert workspace_path(Path("data"), queued) == ws / "data"
    assert workspace_path(Path("data"), queued / "sub") == ws / "sub" / "data"
    assert workspace_path(Path("data"), ws) == ws / "data"
    assert workspace_path(Path("/abs/data"), queued) == Path("/abs/data")
