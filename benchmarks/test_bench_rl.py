"""RL-AUX speed: the batched collector against the env loop, and one RL-AUX cycle against a
`single` epoch, at smoke settings (CIFAR-10 subset, width 0.25, CPU).

Run: `pytest benchmarks/test_bench_rl.py -q -s` (the -s shows the breakdowns).

Both comparisons are ratios of timings taken in the same run, single-threaded: on a shared
CPU, multi-threaded PyTorch spin-waits between threads on every op, which inflates
batch-of-one forwards far more than batch-of-100 ones and would flatter the batched
collector. The asserted floors/ceilings are what this CPU code honestly meets, with margin:

* collector: labelling throughput (policy forwards + transitions, main-network step
  stubbed out) is compute-bound on a CPU, so batching buys ~3-6x here, not the >= 50x it
  buys on a GPU, where a batch-of-one forward costs as much as a batch of 100. With the
  main-network step, rewards included (the same work in both), the gain shrinks further.
* cycle: one agent epoch + one main epoch costs ~13 `single` epochs, as the authors'
  design did (docs/method.md §8): PPO's 10 epochs over every sample through a VGG16 agent is ~9 of
  them, the reward forwards (256 images per step) ~1, and the agent epoch's own SGD ~1.
  The <= 3x target needs a change to the method's work; see the printed breakdown.
  The agent diagnostics (`rl.diagnostics`, on by default) are timed apart and left out of
  the ratio: they are a fixed cost per epoch (12 reward evaluations, 4 sandbox steps, two
  probe forwards), ~5 units at this 600-image epoch and ~3% of an epoch at the study's 9,000.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from rlaux.config import TrainConfig, build_config
from rlaux.data import Splits, load_splits
from rlaux.methods.base import AuxMethod
from rlaux.methods.rl.method import RLAux
from rlaux.methods.rl.sb3_reference import use_sb3_contrib
from rlaux.trainer import Trainer
from rlaux.training import build_run, train_epoch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RLAUX_DATA", REPO.parent / "shared" / "data"))
SMOKE = dict(dataset="cifar10", train_size=600, test_size=100, width=0.25, device="cpu", progress=False, seed=0)

COLLECTOR_SPEEDUP_FLOOR = 2.0  # labelling throughput, batched / env loop (measured ~3-6x on 1 CPU thread)
# RL-AUX cycle / single epoch, probe excluded (measured 12.9-17.7x in one session here; design: 13-14x)
CYCLE_CEILING = 22.0


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def splits() -> Splits:
    if not (DATA / "subsets" / "cifar10.npz").is_file():
        pytest.skip(f"CIFAR data not found under {DATA}; set RLAUX_DATA")
    return load_splits(config("single"))


def config(method: str, **overrides) -> TrainConfig:
    return build_config(SMOKE | dict(method=method, data_root=str(DATA)), overrides)


def build(method: str, splits: Splits, **overrides) -> tuple[Trainer, AuxMethod]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_run(config(method, **overrides), splits)


class Stopwatch:
    """Accumulates wall time spent inside wrapped methods, by label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, obj: object, name: str, label: str, exclusive: bool = False) -> None:
        """`exclusive`: the wrapped call's time goes to `label` only, not to the labels it calls into."""
        inner: Callable = getattr(obj, name)

        @functools.wraps(inner)
        def timed(*args, **kwargs):
            before = dict(self.seconds)
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                if exclusive:
                    self.seconds.update({k: before.get(k, 0.0) for k in self.seconds})
                self.seconds[label] = before.get(label, 0.0) + time.perf_counter() - t0

        setattr(obj, name, timed)


def seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_batched_collector_vs_env_loop(benchmark, splits):
    """Same policy (PPO updates stubbed out so it stays fixed), same epoch, both collectors."""
    methods: dict[str, RLAux] = {}
    for name in ("batched", "env"):
        _, method = build("rl", splits, rl={"collector": name})
        method.agent.train = lambda: None  # type: ignore[method-assign]
        methods[name] = method  # type: ignore[assignment]
    steps = methods["batched"].agent.n_steps * (
        methods["batched"].env.epoch_steps() // methods["batched"].agent.n_steps
    )

    full = {name: seconds(lambda m=m: m.train_agent(0)) for name, m in methods.items()}
    for m in methods.values():  # labelling only: the main-network step and reward stubbed out
        m.env.sandbox.step = lambda batch, actions: torch.zeros(())  # type: ignore[method-assign]
    env_labelling = seconds(lambda: methods["env"].train_agent(0))
    benchmark.pedantic(methods["batched"].train_agent, args=(0,), rounds=3, iterations=1)
    batched_labelling = benchmark.stats.stats.median

    speedup = env_labelling / batched_labelling
    info = {
        "labelling_images_per_s_batched": steps / batched_labelling,
        "labelling_images_per_s_env": steps / env_labelling,
        "labelling_speedup": speedup,
        "with_main_step_images_per_s_batched": steps / full["batched"],
        "with_main_step_images_per_s_env": steps / full["env"],
        "with_main_step_speedup": full["env"] / full["batched"],
    }
    benchmark.extra_info.update(info)
    print("\n" + "\n".join(f"  {k:40s} {v:9.1f}" for k, v in info.items()))
    assert speedup >= COLLECTOR_SPEEDUP_FLOOR, info


@pytest.mark.parametrize(
    "errata, sb3",
    [({}, False), ({}, True), ({"unmasked_soft_targets": True, "target_entropy_reward": True}, False)],
    # before issue 9: unmasked soft targets, entropy of the batch's targets; before issue 19: sb3-contrib's
    # own PPO update, masked distribution and numpy GAE (`sb3_reference.use_sb3_contrib`), the same numbers
    ids=["paper", "paper-before-issue-19", "before-issue-9"],
)
def test_rl_cycle_vs_single_epoch(benchmark, splits, errata, sb3):
    """One RL-AUX cycle (train-agent epoch + train-main epoch) in units of one `single` epoch."""
    single_trainer, single = build("single", splits)
    trainer, method = build("rl", splits, errata=errata)
    assert isinstance(method, RLAux) and method.probe is not None
    if sb3:
        use_sb3_contrib(method.agent)
    watch = Stopwatch()
    watch.wrap(method.agent.policy, "forward", "agent: label forwards (collect)")
    watch.wrap(method.env.sandbox, "reward", "agent: reward forwards")
    watch.wrap(method.agent, "train", "agent: PPO update")
    watch.wrap(method.agent.policy, "labels", "main: label forwards (argmax)")
    watch.wrap(trainer, "train_step", "main-network SGD (agent + main epochs)")

    watch.wrap(method.probe, "measure", "diagnostics probe (not the method)", exclusive=True)
    watch.wrap(method, "before_epoch", "agent epoch")
    train_epoch(single_trainer, single, 0)  # warm-up (first-call allocations)
    single_s = min(seconds(lambda e=e: train_epoch(single_trainer, single, e)) for e in (1, 2, 3))
    split: dict[str, float] = {}

    def cycle_once() -> None:  # the loop's epoch: before_epoch = agent epoch, then the main epoch
        split["cycle"] = seconds(lambda: train_epoch(trainer, method, 0))

    benchmark.pedantic(cycle_once, rounds=1, iterations=1)  # one cycle: too slow to repeat
    probe_s = watch.seconds.pop("diagnostics probe (not the method)")
    agent_s = watch.seconds.pop("agent epoch") - probe_s
    main_s = split["cycle"] - agent_s - probe_s
    cycle = (agent_s + main_s) / single_s
    units = {label: s / single_s for label, s in sorted(watch.seconds.items())}
    units["other"] = cycle - sum(units.values())
    units["(diagnostics probe, outside the cycle)"] = probe_s / single_s
    benchmark.extra_info.update(
        {"single_epoch_s": single_s, "agent_epoch_s": agent_s, "main_epoch_s": main_s, "cycle_over_single": cycle}
        | {"probe_s": probe_s}
        | {f"units: {k}": v for k, v in units.items()}
    )
    print(
        f"\n  single epoch {single_s:.2f}s; agent epoch {agent_s:.2f}s + main epoch {main_s:.2f}s = {cycle:.1f} units"
    )
    print("\n".join(f"    {k:42s} {v:5.2f} units" for k, v in units.items()))
    assert cycle <= CYCLE_CEILING
