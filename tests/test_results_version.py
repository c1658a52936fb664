"""The results version guards the numbers: each method's tiny float64 run must match its committed fingerprint.

Committed runs are keyed by their method family's results version (`rlaux.run_identity.RESULTS_VERSIONS`), not
by source text, so a refactor keeps them. This test is what makes that safe: a change that moves any number of any
method (a loss constant, an update rule, an evaluation) changes a fingerprint, and the test fails until that
family's version is bumped and the fingerprints re-recorded:

    python tests/test_results_version.py --record

Each variant trains 3 epochs (a learning-rate step after 2) of a width-1/16 network on 40 seeded random
images of 20 classes, in float64, and records every history value but time, the run's metrics and
two sums of its best weights. float64 keeps a tiny change visible (and same-seed CPU runs are
deterministic); RL's rollout buffer stays float32, as SB3's. The bf16 variants run in float32 (what
autocast casts from); two variants read tiny .npz archives through the data layer.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rlaux import losses
from rlaux.config import build_config
from rlaux.data import CIFAR_NORM, DatasetInfo, Split, Splits
from rlaux.registry import METHODS
from rlaux.run_identity import RESULTS_VERSIONS

FINGERPRINTS = Path(__file__).with_name("results_fingerprint.json")
RTOL = 1e-9
RL_TOLERANCE = {"rel_tol": 1e-4, "abs_tol": 1e-6}
"""RL variants keep SB3's float32 rollout buffer and PPO update, whose last bits differ between CPUs (the recorded
fingerprints against an AMD EPYC: up to 2e-5 relative, 6e-4 on a policy-gradient loss near zero, 1e-6 absolute);
float64 variants stay at RTOL. A change to RL's code moves its numbers far beyond this."""
RECORD = "python tests/test_results_version.py --record"
TINY_RL = {"n_steps": 10, "ppo_batch_size": 10, "n_epochs": 2, "reward_batch": 10, "feature_dim": 16}
AS_RUN = {
    "frozen_heads": True,
    "scalar_value": True,
    "softmax_features": True,
    "softmax_reward": True,
    "unmasked_soft_targets": True,
    "target_entropy_reward": True,
    "ppo_train_mode_batchnorm": True,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "single": {"method": "single"},
    "single-scale9": {"method": "single", "primary_loss_scale": 9.0},
    "human": {"method": "human"},
    "random-lam8": {"method": "random", "lam": 8.0},
    "maxl": {"method": "maxl"},
    "maxl-order1-lambda-one": {"method": "maxl", "maxl": {"order": 1, "lookahead_lambda_one": True}},
    "wa-maxl": {"method": "wa-maxl"},
    "wa-maxl-batch-mean": {"method": "wa-maxl", "errata": {"batch_mean_weights": True}},
    "rl": {"method": "rl", "rl": TINY_RL},
    "rl-placebo": {"method": "rl", "rl": TINY_RL | {"placebo": True}},
    "rl-oracle": {"method": "rl", "rl": TINY_RL | {"reward": "oracle", "oracle_noise": 0.1}},
    "rl-paired": {"method": "rl", "rl": TINY_RL | {"reward_pairing": True}},
    "rl-batch-credit": {
        "method": "rl",
        "rl": {k: v for k, v in TINY_RL.items() if k != "n_steps"} | {"credit": "batch"},
    },
    "rl-sample-credit": {
        "method": "rl",
        "rl": {k: v for k, v in TINY_RL.items() if k != "n_steps"} | {"credit": "sample", "reward_pairing": True},
    },
    "rl-oracle-sample-credit": {
        "method": "rl",
        "rl": {k: v for k, v in TINY_RL.items() if k != "n_steps"}
        | {"credit": "sample", "reward": "oracle", "oracle_noise": 0.1},
    },
    "rl-env-in-block-reset": {
        "method": "rl",
        "rl": TINY_RL | {"collector": "env", "target": "in-block", "reset": "batch"},
    },
    "rl-asrun": {"method": "rl", "rl": TINY_RL, "errata": AS_RUN},
    "wa-rl": {"method": "wa-rl", "rl": TINY_RL},
    "wa-rl-asrun": {"method": "wa-rl", "rl": TINY_RL, "errata": AS_RUN | {"weight_scale_8w3": True}},
    "single-momentum": {"method": "single", "momentum": 0.9},
    "rl-untrained": {"method": "rl", "rl": TINY_RL | {"train_agent": False}},
    # through the data layer: tiny .npz archives read by rlaux.data (read_npz, block order, subsets, split)
    "human-npz-data": {"method": "human"},
    "pairs-human-npz-data": {"dataset": "cifar10-pairs", "method": "human", "psi": 2},
    # each precision and memory layout the code has: bf16 autocast (in float32, what autocast casts from), channels-last
    "single-bf16": {"method": "single", "precision": "bf16"},
    "maxl-bf16": {"method": "maxl", "precision": "bf16"},
    "rl-bf16": {"method": "rl", "rl": TINY_RL, "precision": "bf16"},
    "single-channels-last": {"method": "single", "channels_last": True},
    "rl-channels-last": {"method": "rl", "rl": TINY_RL, "channels_last": True},
}
NPZ_VARIANTS = ("human-npz-data", "pairs-human-npz-data")
BF16_TOLERANCE = {"rel_tol": 1e-2, "abs_tol": 1e-3}
"""bf16 variants run in float32 (autocast casts float32 ops only) with bf16's 8-bit mantissa: CPUs with and without
native bf16 kernels round differently. They guard the bf16 path (its casts and autocast regions), the float64 variants
the arithmetic."""


def tiny_data(num_classes: int = 20, psi: int = 5) -> Splits:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        y = torch.arange(n) % num_classes
        x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        return Split(x, y, psi * y + torch.randint(0, psi, (n,), generator=g))

    info = DatasetInfo(num_classes, CIFAR_NORM["mean"], CIFAR_NORM["std"], True, lambda *a: (split(1), split(1)))
    return Splits(split(40), split(20), split(20), info)


def tiny_npz_root(folder: Path) -> Path:
    """A data root of tiny seeded archives in the offline subsets' layout: CIFAR-100 (60 train and 20 test images, the
    fine class 5 * superclass + a seeded rank) and CIFAR-10 (60 and 20, classes in turn)."""
    g = np.random.default_rng(0)
    (folder / "subsets").mkdir(parents=True)
    images = {f"x_{s}": g.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for s, n in (("train", 60), ("test", 20))}
    coarse = {s: np.arange(n) % 20 for s, n in (("train", 60), ("test", 20))}
    fine = {s: 5 * c + g.integers(0, 5, len(c)) for s, c in coarse.items()}
    np.savez(
        folder / "subsets" / "cifar100.npz",
        **images,
        **{f"y_{s}": fine[s] for s in fine},
        **{f"y_{s}_coarse": coarse[s] for s in coarse},
    )
    np.savez(
        folder / "subsets" / "cifar10.npz",
        **images,
        **{f"y_{s}": np.arange(n) % 10 for s, n in (("train", 60), ("test", 20))},
    )
    return folder


def fingerprint(variant: str, out: Path) -> dict[str, float]:
    """The numbers of one variant's tiny run: history (time left out), metrics, and sums of its best weights."""
    from rlaux.training import train

    npz = variant in NPZ_VARIANTS
    cfg = build_config(
        {"dataset": "cifar100-20", "epochs": 3, "lr_step": 2, "batch_size": 10, "width": 0.0625, "seed": 3},
        {"device": "cpu", "progress": False, "out": str(out)},
        {"data_root": str(tiny_npz_root(out.parent / f"{variant}-data"))} if npz else {},
        VARIANTS[variant],
    )
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float32 if cfg.precision == "bf16" else torch.float64)
    torch.set_num_threads(1)
    try:
        metrics = train(cfg, data=None if npz else tiny_data())
    finally:
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)
    values = {f"metrics/{k}": v for k, v in metrics.items() if isinstance(v, int | float)}
    lines = (out / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=True))
        for key, value in row.items():
            if key not in ("epoch", "seconds") and value != "":
                values[f"epoch{row['epoch']}/{key}"] = float(value)
    best = torch.load(out / "best.pt", weights_only=True)
    values["best/sum"] = float(sum(t.double().sum() for t in best.values()))
    values["best/abs_sum"] = float(sum(t.double().abs().sum() for t in best.values()))
    return values


def differences(recorded: dict[str, float], now: dict[str, float], variant: str = "single") -> list[str]:
    """Keys whose value moved beyond the variant's tolerance (NaN equals NaN), appeared or went."""
    rl = VARIANTS.get(variant, {}).get("method") in ("rl", "wa-rl")
    bf16 = VARIANTS.get(variant, {}).get("precision") == "bf16"
    tolerance = BF16_TOLERANCE if bf16 else RL_TOLERANCE if rl else {"rel_tol": RTOL, "abs_tol": 1e-12}
    moved = [
        f"{k}: {recorded[k]!r} -> {now[k]!r}"
        for k in recorded.keys() & now.keys()
        if not ((math.isnan(recorded[k]) and math.isnan(now[k])) or math.isclose(recorded[k], now[k], **tolerance))
    ]
    return (
        sorted(moved)
        + [f"{k}: new" for k in now.keys() - recorded.keys()]
        + [f"{k}: gone" for k in recorded.keys() - now.keys()]
    )


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(FINGERPRINTS.read_text())


def family(variant: str) -> str:
    """The method family whose results version covers the variant."""
    return METHODS[VARIANTS[variant].get("method", "single")].family


def test_the_fingerprints_were_recorded_under_these_results_versions(recorded):
    assert recorded["results_versions"] == RESULTS_VERSIONS, (
        f"tests/results_fingerprint.json was recorded under results versions {recorded['results_versions']!r}, the "
        f"code says {RESULTS_VERSIONS!r}: re-record them ({RECORD})"
    )
    assert sorted(recorded["variants"]) == sorted(VARIANTS), f"variants added or removed: re-record ({RECORD})"


@pytest.mark.parametrize("variant", VARIANTS)
def test_numbers_move_only_with_the_results_version(variant, recorded, tmp_path):
    moved = differences(recorded["variants"][variant], fingerprint(variant, tmp_path / variant), variant)
    assert not moved, (
        f"{variant}'s numbers moved under the {family(variant)!r} results version "
        f"{RESULTS_VERSIONS[family(variant)]!r} (recorded with torch {recorded['torch']}, now {torch.__version__}): "
        f"{'; '.join(moved[:5])}. If the change is meant to move numbers, bump that family's version in "
        f"rlaux/run_identity.py RESULTS_VERSIONS (its committed runs then retrain) and re-record ({RECORD}); if not, "
        f"the change is a bug."
    )


def test_a_one_constant_change_in_a_loss_is_caught(recorded, tmp_path, monkeypatch):
    """The fingerprint sees a focal loss whose exponent is off by 1e-6 (what a changed constant looks like)."""
    focal = losses.focal_loss
    monkeypatch.setattr("rlaux.trainer.focal_loss", lambda logits, y, gamma: focal(logits, y, gamma + 1e-6))
    assert differences(recorded["variants"]["single"], fingerprint("single", tmp_path / "single"))


def test_a_bf16_path_that_runs_in_fp32_is_caught(recorded, tmp_path, monkeypatch):
    """The bf16 fingerprint sees its autocast: with autocast switched off, the same variant moves beyond its
    tolerance."""
    import contextlib

    monkeypatch.setattr("rlaux.trainer.Trainer.autocast", lambda self: contextlib.nullcontext())
    assert differences(
        recorded["variants"]["single-bf16"], fingerprint("single-bf16", tmp_path / "bf16"), "single-bf16"
    )


def record(
    names: tuple[str, ...] = tuple(VARIANTS), path: Path = FINGERPRINTS, versions: dict[str, str] | None = None
) -> None:
    """Write the fingerprints of `names` under the families' `versions`. A fingerprint that moved while its family's
    version stayed is refused (the numbers moved without a bump: committed runs would pass as current); a recorded
    variant whose family's version is unchanged keeps its values, so only new variants and bumped families are
    written."""
    import tempfile

    versions = dict(RESULTS_VERSIONS if versions is None else versions)
    with tempfile.TemporaryDirectory() as tmp:
        variants = {v: fingerprint(v, Path(tmp) / v) for v in names}
    old = json.loads(path.read_text()) if path.is_file() else {"results_versions": {}, "variants": {}}
    kept = {v for v in old["variants"] if old["results_versions"].get(family(v)) == versions[family(v)]}
    moved = {v: d for v in variants.keys() & kept if (d := differences(old["variants"][v], variants[v], v))}
    if moved:
        first = next(iter(sorted(moved)))
        raise SystemExit(
            f"refusing to re-record: {', '.join(sorted(moved))} moved under the unchanged {family(first)!r} results "
            f"version {versions[family(first)]!r} ({first}: {moved[first][0]}); bump that family's version in "
            f"rlaux/run_identity.py RESULTS_VERSIONS (its committed runs then retrain) and record again, or undo the "
            f"change that moved them"
        )
    variants = {v: values for v, values in old["variants"].items() if v in kept} | {
        v: values for v, values in variants.items() if v not in kept
    }
    data = {"results_versions": versions, "torch": torch.__version__, "variants": variants}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(names)} variants under results versions {versions!r} in {path}")


def test_recording_refuses_a_moved_fingerprint_under_the_same_version(recorded, tmp_path):
    """--record cannot launder a moved number: under the recorded version a changed fingerprint is refused and the
    file is left as it was; under a new version (a bump) it is recorded."""
    path = tmp_path / "fingerprints.json"
    moved = json.loads(json.dumps(recorded))
    moved["variants"]["single"]["best/sum"] += 1.0
    path.write_text(json.dumps(moved))
    with pytest.raises(SystemExit, match=r"refusing to re-record: single moved under the unchanged 'baseline' results"):
        record(("single",), path)
    assert json.loads(path.read_text()) == moved
    with pytest.raises(SystemExit, match=r"refusing to re-record: single"):  # another family's bump does not cover it
        record(("single",), path, versions=RESULTS_VERSIONS | {"rl": "bumped"})
    assert json.loads(path.read_text()) == moved
    record(("single",), path, versions=RESULTS_VERSIONS | {"baseline": "bumped"})
    assert not differences(recorded["variants"]["single"], json.loads(path.read_text())["variants"]["single"])
    path.write_text(json.dumps(moved | {"variants": {k: v for k, v in moved["variants"].items() if k != "single"}}))
    record(("single",), path)  # a variant new under the same version is added
    assert not differences(recorded["variants"]["single"], json.loads(path.read_text())["variants"]["single"])


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(f"usage: {RECORD}")
    record()
