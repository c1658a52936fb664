"""Regenerate benchmarks/thresholds.yaml: train each gated smoke experiment on several seeds.

    python benchmarks/calibrate.py              # writes benchmarks/thresholds.yaml

A gate is mean - 3 sd over the seeds (rounded down to 0.1 pp): the benchmark re-runs seed 0,
bit-identical on the same CPU and torch build; on another CPU float-level differences act like
a change of seed, which the seed spread bounds. 3 sd keeps a false alarm near 1 in 1,000 for a
normal spread, while a broken run (benchmarks/test_accuracy.py shows one) falls far below.
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

from rlaux.experiments import load_params
from rlaux.training import train

HERE = Path(__file__).parent
GATES = {"c10-single": 5, "c10-random": 3, "c10-maxl": 3, "c10-rl": 3}  # experiment -> seeds measured
METRIC = "test_acc_best_val"


def main() -> None:
    params = load_params(HERE.parent / "params.yaml")
    params.profile = "smoke"
    measured: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for exp_id, n in GATES.items():
            for seed in range(n):
                cfg = params.run_config(exp_id, 0)
                cfg = cfg.model_copy(update={"seed": seed, "out": Path(tmp) / f"{exp_id}-{seed}"})
                measured.setdefault(exp_id, []).append(round(train(cfg)[METRIC], 2))
                print(exp_id, seed, measured[exp_id][-1], file=sys.stderr)
    write_thresholds(measured)


def write_thresholds(measured: dict[str, list[float]]) -> None:
    gates = {e: math.floor(10 * (statistics.mean(v) - 3 * statistics.stdev(v))) / 10 for e, v in measured.items()}
    header = (
        f"# Accuracy regression gates for the smoke profile (benchmarks/test_accuracy.py), written by\n"
        f"# benchmarks/calibrate.py: gate = mean - 3 sd of {METRIC} over the seeds in `measured`.\n"
    )
    body = {"seed": 0, "metric": METRIC, "gates": gates, "measured": measured}
    (HERE / "thresholds.yaml").write_text(header + yaml.safe_dump(body, sort_keys=False))


if __name__ == "__main__":
    main()
