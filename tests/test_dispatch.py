"""`rlaux dispatch` on real Ray: two nodes on this machine, a node lost mid-run, GPU fractions, DVC's adoption."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from rlaux.errors import ConfigError
from rlaux.experiments import run_experiment

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from rlaux.dispatch import INSTALL_HINT, dispatch, local_ray  # noqa: E402


def workspace(root: Path, data_root: Path, seeds: int = 2, epochs: int = 1, train_size: int = 300) -> Path:
    """A workspace with params.yaml: c10-single and c10-random, `seeds` seeds each, tiny runs."""
    root.mkdir(parents=True, exist_ok=True)
    settings = {"epochs": epochs, "width": 0.0625, "device": "auto", "progress": False, "data_root": str(data_root)}
    params = {
        "profile": "tiny",
        "seed_pool": [0, 1],
        "profiles": {
            "tiny": {"seeds": seeds, "settings": settings, "datasets": {"cifar10": {"train_size": train_size}}},
            "other": {"seeds": 1, "settings": settings, "datasets": {"svhn": {}}},
        },
        "experiments": {
            "c10-single": {"dataset": "cifar10", "method": "single", "test_size": 200},
            "c10-random": {"dataset": "cifar10", "method": "random", "test_size": 200},
        },
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def machines(ws: Path) -> dict[str, dict]:
    return {
        str(p.parent.relative_to(ws)): json.loads(p.read_text()) for p in sorted(ws.glob("runs/*/*/s*/machine.json"))
    }


def sequential(ws: Path, exp: str, seed: int, monkeypatch) -> dict:
    """The same run made in this process, one thread, no Ray: the reference."""
    import torch

    monkeypatch.chdir(ws)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_experiment(exp, Path("params.yaml"), seed=seed)[seed]
    finally:
        torch.set_num_threads(threads)


def freeze_workers(node) -> list[int]:
    """SIGSTOP every process the node's raylet started (its workers): the node hangs as a lost machine does."""
    import psutil
    from ray._private import ray_constants

    raylet = psutil.Process(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
    workers = [process.pid for process in raylet.children(recursive=True)]
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    return workers


@pytest.fixture
def cluster():
    """A head that runs nothing (0 CPUs) on this machine; tests add worker nodes. All on loopback."""
    with local_ray():
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        ray.init(address=c.address, log_to_driver=False)
        yield c
        ray.shutdown()
        c.shutdown()


@pytest.mark.slow
def test_two_nodes_share_the_matrix_and_dvc_stages_adopt_every_run(tmp_path, monkeypatch, data_root, cluster):
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    ws = workspace(tmp_path / "ws", data_root)
    monkeypatch.chdir(ws)
    records = dispatch(Path("params.yaml"), cpus_per_run=1)
    assert sorted((r["experiment"], r["seed"]) for r in records) == [
        ("c10-random", 0),
        ("c10-random", 1),
        ("c10-single", 0),
        ("c10-single", 1),
    ]
    where = machines(ws)
    assert len(where) == 4 and {m["threads"] for m in where.values()} == {1}
    assert len({m["ray_node"] for m in where.values()}) == 2  # both nodes got work
    history = {run: (ws / run / "history.csv").stat().st_mtime_ns for run in where}
    for exp in ("c10-single", "c10-random"):  # the train stages' body: adopts, never retrains
        run_experiment(exp, Path("params.yaml"))
    assert {run: (ws / run / "history.csv").stat().st_mtime_ns for run in where} == history
    reference = sequential(workspace(tmp_path / "alone", data_root), "c10-random", 1, monkeypatch)
    assert next(r for r in records if (r["experiment"], r["seed"]) == ("c10-random", 1))["metrics"] == reference
    assert not list((Path(tempfile.gettempdir()) / "ray").glob("**/runs"))  # nothing landed in Ray's folders


@pytest.mark.slow
def test_a_run_lost_with_its_node_resumes_on_another_and_ends_the_same(tmp_path, monkeypatch, data_root, cluster):
    first = cluster.add_node(num_cpus=1)
    ws = workspace(tmp_path / "ws", data_root, seeds=1, epochs=4, train_size=600)
    monkeypatch.chdir(ws)
    done: list = []
    worker = threading.Thread(target=lambda: done.extend(dispatch(Path("params.yaml"), only=["c10-single"])))
    worker.start()
    checkpoint = ws / "runs/tiny/c10-single/s0/checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists(), "the run never wrote its first checkpoint"
    frozen = freeze_workers(first)  # the run cannot finish on the first node while the second one starts
    cluster.add_node(num_cpus=1)
    cluster.remove_node(first)  # the node dies with the run on it
    for pid in frozen:  # what the dead raylet left behind, stopped
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.join(timeout=600)
    assert len(done) == 1
    history = (ws / "runs/tiny/c10-single/s0/history.csv").read_text().splitlines()
    assert len(history) == 5  # header + 4 epochs: resumed, not started over on the second node ...
    assert machines(ws)["runs/tiny/c10-single/s0"]["ray_node"] != first.node_id
    reference = sequential(
        workspace(tmp_path / "alone", data_root, seeds=1, epochs=4, train_size=600), "c10-single", 0, monkeypatch
    )
    assert done[0]["metrics"] == reference  # ... and ends as an uninterrupted run does
    print(f"resumed on the second node: {done[0]['metrics']}\nuninterrupted, in this process: {reference}")


@pytest.mark.slow
def test_runs_share_gpus_by_fraction(tmp_path, monkeypatch, data_root):
    """Two fake GPUs declared on this CPU machine, two runs per GPU: Ray gives the four runs GPUs 0, 0, 1, 1
    (each run itself trains on the CPU: `device: auto` finds no CUDA)."""
    ws = workspace(tmp_path / "ws", data_root)
    monkeypatch.chdir(ws)
    with local_ray():
        ray.init(num_cpus=4, num_gpus=2, log_to_driver=False)
        try:
            dispatch(Path("params.yaml"), runs_per_gpu=2)
        finally:
            ray.shutdown()
    assert sorted(m["cuda_visible_devices"] for m in machines(ws).values()) == ["0", "0", "1", "1"]


def test_bad_requests_fail_before_ray_starts(tmp_path, monkeypatch, data_root):
    monkeypatch.chdir(workspace(tmp_path, data_root))
    with pytest.raises(ConfigError, match=r"--only names unknown experiments \['c10-nope'\]"):
        dispatch(Path("params.yaml"), only=["c10-nope"])
    with pytest.raises(ConfigError, match="profile 'nope' unknown"):
        dispatch(Path("params.yaml"), profile="nope")
    with pytest.raises(ConfigError, match="nothing to dispatch: profile 'other'"):
        dispatch(Path("params.yaml"), profile="other", only=["c10-single"])
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(ConfigError, match=r"pip install 'rlaux\[cluster\]'") as err:
        dispatch(Path("params.yaml"))
    assert str(err.value) == INSTALL_HINT
    assert not ray.is_initialized()


def test_a_local_ray_is_started_on_loopback_and_the_switch_is_not_left_behind(tmp_path, monkeypatch, data_root):
    """What dispatch's own Ray is started with, and that this process is as it was afterwards."""
    from ray._private import ray_constants

    monkeypatch.chdir(workspace(tmp_path, data_root))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    seen = {}

    def fake_init(**kwargs):
        seen.update(
            single_node=os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"),
            cluster=ray_constants.ENABLE_RAY_CLUSTER,
            address=kwargs.get("address"),
        )
        raise RuntimeError("stop before starting Ray")

    monkeypatch.setattr(ray, "init", fake_init)
    cluster_before, env_before = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    with pytest.raises(RuntimeError, match="stop before starting Ray"):
        dispatch(Path("params.yaml"))
    assert seen == {"single_node": "0", "cluster": False, "address": None}
    assert cluster_before == ray_constants.ENABLE_RAY_CLUSTER
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == env_before


@pytest.mark.slow
def test_a_local_ray_listens_on_loopback_only():
    """Every socket a local Ray's processes listen on is a loopback address (on Linux Ray would otherwise
    take the machine's network address); a Ray that drops the switch fails here."""
    import ipaddress

    import psutil

    with local_ray():
        ray.init(num_cpus=1, log_to_driver=False)
        try:
            ray.get(ray.remote(lambda: 1).remote())  # a worker too
            ours = {p.pid for p in psutil.process_iter(["cmdline"]) if "ray" in " ".join(p.info["cmdline"] or [])}
            listening = {
                c.laddr.ip for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in ours
            }
        finally:
            ray.shutdown()
    assert listening, "found no listening socket of Ray's processes"
    for ip in listening:
        address = ipaddress.ip_address(ip)
        mapped = getattr(address, "ipv4_mapped", None)
        assert (mapped or address).is_loopback, f"Ray listens on {ip}"
