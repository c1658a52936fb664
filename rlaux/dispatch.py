"""`rlaux dispatch`: every run of a profile as a Ray task, on this machine or on a cluster.

Ray is the one scheduler for parallel runs; DVC stays the pipeline, the cache and the record. Each
task trains one (experiment, seed) with `run_experiment` inside the workspace, so its run lands at
`<workspace>/runs/<profile>/<experiment>/s<seed>` (an absolute path: on a cluster, the workspace must
be on storage every node shares). A task gets `cpus_per_run` CPUs, and torch as many threads; a run
that may use a GPU (`device` auto or cuda, on a cluster with GPUs) gets 1/runs_per_gpu of one, and
Ray sets CUDA_VISIBLE_DEVICES before the task starts. A task with a GPU share runs in a fresh worker
process, so no CUDA context outlives its run; CPU tasks reuse workers (torch is imported once each).
A run lost with its node is retried by Ray and resumes from its last checkpoint. Afterwards `dvc repro`
adopts the runs: a train stage keeps a finished run of the same config and code (`run_experiment`), so
nothing trains twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlaux.config import TrainConfig
from rlaux.errors import ConfigError
from rlaux.experiments import PARAMS, RUNS, load_params, run_experiment
from rlaux.io import progress_bar

INSTALL_HINT = "rlaux dispatch needs Ray: pip install 'rlaux[cluster]' (or pip install ray)"
SINGLE_NODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's own switch for a machine that is not part of a cluster (its default on Windows and macOS): with it
off, Ray takes 127.0.0.1 as the node's address and its servers listen there only. On Linux Ray otherwise
listens on the machine's network address, even for a Ray started by `ray.init()` for one process."""


@contextlib.contextmanager
def local_ray() -> Iterator[None]:
    """A Ray started inside this block listens on loopback only, and so do the processes it starts. Ray reads
    the switch when it is imported, so this process's copy is set as well. (A new local Ray also requires
    Ray's token by default since Ray 2.5x, unless RAY_AUTH_MODE says otherwise.) tests/test_dispatch.py
    checks the sockets, so a Ray that drops the switch fails there."""
    from ray._private import ray_constants

    saved_env, saved_constant = os.environ.get(SINGLE_NODE), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_NODE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_constant
        if saved_env is None:
            os.environ.pop(SINGLE_NODE, None)
        else:
            os.environ[SINGLE_NODE] = saved_env


def train_one(workspace: str, params_path: str, profile: str, exp_id: str, seed: int, threads: int) -> dict[str, Any]:
    """The Ray task: one run, trained (or resumed, or kept) in the workspace with `threads` torch threads."""
    import torch

    os.chdir(workspace)  # runs/ and relative data roots are the workspace's, never Ray's working directory
    torch.set_num_threads(threads)
    started = time.perf_counter()
    metrics = run_experiment(exp_id, Path(params_path), seed=seed, profile=profile)[seed]
    run = Path(workspace) / RUNS / profile / exp_id / f"s{seed}"
    minutes = (time.perf_counter() - started) / 60
    return {"experiment": exp_id, "seed": seed, "metrics": metrics, "minutes": minutes, "run": str(run)}


def dispatch(
    params_path: Path = PARAMS,
    profile: str | None = None,
    only: list[str] | None = None,
    address: str | None = None,
    cpus_per_run: int = 1,
    runs_per_gpu: int | None = None,
    gpus: int | None = None,
    retries: int = 3,
) -> list[dict[str, Any]]:
    """Train every run of `profile` (default: params.yaml's) as Ray tasks; returns one record per run.

    `address`: a running cluster (`ray start --head` prints it; else $RAY_ADDRESS), or None for a
    Ray started here for the duration (`local_ray`: on loopback only, with Ray's token), declaring `gpus` GPUs (default: `queue.gpus` when set, else
    what Ray detects). `runs_per_gpu` defaults to the profile's `queue.runs_per_gpu`. Everything is
    validated before Ray starts.
    """
    params = load_params(params_path).at(profile)
    if cpus_per_run < 1:
        raise ConfigError(f"--cpus-per-run {cpus_per_run} must be at least 1")
    runs = params.active_runs()
    if only is not None:
        unknown = sorted(set(only) - set(params.experiments))
        if unknown:
            raise ConfigError(f"--only names unknown experiments {unknown}; known: {', '.join(params.experiments)}")
        runs = [r for r in runs if r[0] in only]
    if not runs:
        raise ConfigError(f"nothing to dispatch: profile {params.profile!r} runs none of {only or 'its experiments'}")
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    workspace = Path.cwd().resolve()
    started_here = not ray.is_initialized()
    address = address or os.environ.get("RAY_ADDRESS") or None
    with local_ray() if started_here and address is None else contextlib.nullcontext():
        if started_here:
            declared = gpus if gpus is not None else max(cfg.queue.gpus for _, _, cfg in runs) or None
            ray.init(address=address, num_gpus=None if address else declared, log_to_driver=False)
        try:
            return _run_all(
                ray, runs, workspace, Path(params_path).resolve(), params.profile, cpus_per_run, runs_per_gpu, retries
            )
        finally:
            if started_here:
                ray.shutdown()


def _run_all(
    ray: Any,
    runs: list[tuple[str, int, TrainConfig]],
    workspace: Path,
    params_path: Path,
    profile: str,
    cpus: int,
    runs_per_gpu: int | None,
    retries: int,
) -> list[dict[str, Any]]:
    """Submit one task per run, then report each as it finishes (a line each, and a bar for all on a terminal)."""
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    on_gpu = ray.remote(max_calls=1)(train_one)  # a fresh worker process per run: no CUDA context outlives it
    on_cpu = ray.remote(train_one)  # workers are reused: torch is imported once per worker, not once per run
    pending = []
    for exp_id, seed, cfg in runs:
        share_of_gpu = 1 / (runs_per_gpu or cfg.queue.runs_per_gpu) if has_gpus and cfg.device != "cpu" else 0
        task = (on_gpu if share_of_gpu else on_cpu).options(num_cpus=cpus, num_gpus=share_of_gpu, max_retries=retries)
        pending.append(task.remote(str(workspace), str(params_path), profile, exp_id, seed, cpus))
    done = []
    with progress_bar(total=len(pending), desc=f"dispatch {profile}", unit="run") as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            record = ray.get(ready[0])
            done.append(record)
            bar.write(
                f"finished {record['experiment']} s{record['seed']} in {record['minutes']:.1f} min: "
                f"test acc {record['metrics']['test_acc_best_val']:.2f} (best-val epoch), {record['run']}"
            )
            bar.update()
    return done
