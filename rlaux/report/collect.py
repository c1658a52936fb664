"""The evaluate stage: every active run's metrics and curves in two tidy tables."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from rlaux.errors import ConfigError
from rlaux.experiments import Params
from rlaux.io import write_json, write_text
from rlaux.report.stats import mean_ci, two_way_components

METRICS = [
    "test_acc_last15",
    "test_acc_best_val",
    "test_acc_final",
    "val_acc_best",
    "precision",
    "recall",
    "f1",
]
LABEL_DIAGNOSTICS = {
    "labels/in_block": "in_block",
    "labels/entropy": "label_entropy",
    "labels/nmi": "nmi",
}
"""history.csv column (label-generating methods) -> runs.csv column: the last epoch's value, NaN if absent."""
AGENT_LAST = {
    "agent/policy_entropy": "policy_entropy",
    "agent/max_prob": "policy_max_prob",
    "agent/kl_from_init": "kl_from_init",
    "agent/sampled_label_entropy": "sampled_label_entropy",
}
"""history.csv column (rl, wa-rl) -> runs.csv column: the last logged value, where the policy ended up."""
AGENT_MEAN = {
    "agent/reward_label_share": "reward_label_share",
    "agent/reward_batch_share": "reward_batch_share",
    "rl/ppo_approx_kl": "ppo_approx_kl",
    "rl/ppo_clip_fraction": "ppo_clip_fraction",
}
"""history.csv column (rl, wa-rl) -> runs.csv column: the mean over epochs (each epoch's value is a small, noisy probe)."""


AGREEMENT_EPOCHS = 3
"""Fine agreement is averaged over the last epochs of each run (each epoch's is one agent epoch's sampled labels)."""


def final_agreement(history: pd.DataFrame) -> float:
    """A run's fine agreement over its last AGREEMENT_EPOCHS epochs (NaN for a run that does not log it)."""
    if "rl/fine_agreement" not in history:
        return float("nan")
    return float(history["rl/fine_agreement"].dropna().tail(AGREEMENT_EPOCHS).mean())


def data_manifest(params: Params, out: Path) -> dict:
    """The data stage: load every dataset the profile uses (downloading if allowed), record its splits."""
    import torch

    from rlaux.data import load_splits
    from rlaux.io import workspace_path

    manifest: dict = {"profile": params.profile}
    for _exp_id, seed, cfg in params.active_runs():
        if cfg.dataset in manifest or seed != params.seeds()[0]:
            continue
        s = load_splits(cfg.model_copy(update={"data_root": workspace_path(cfg.data_root)}))  # a queued copy: ./data
        manifest[cfg.dataset] = {
            name: {"images": len(split), "per_class": torch.bincount(split.y).tolist()}
            for name, split in (("train", s.train), ("val", s.val), ("test", s.test))
        }
    write_json(out, manifest)
    return manifest


def collect(params: Params, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """results/runs.csv (one row per run), results/curves.csv (one row per run and epoch), results/metrics/."""
    rows, curves = [], []
    for exp_id, seed, cfg in params.active_runs():
        run = params.run_dir(exp_id, seed)
        metrics_file = run / "metrics.json"
        if not metrics_file.is_file():
            raise ConfigError(f"run {run} has no metrics.json; train it first (dvc repro train@{exp_id})")
        metrics = json.loads(metrics_file.read_text())
        history = pd.read_csv(run / "history.csv")
        last = history.iloc[-1] if len(history) else pd.Series(dtype=float)
        rows.append(
            {
                "experiment": exp_id,
                "seed": seed,
                "dataset": cfg.dataset,
                "method": cfg.method,
                "lam": cfg.lam,
            }
            | {k: metrics[k] for k in METRICS}
            | {"seconds_per_epoch": _seconds_per_epoch(run, history), "syncs_per_epoch": _syncs_per_epoch(run)}
            | {"epochs": int(metrics.get("epochs", len(history)))}
            | {col: float(last.get(src, math.nan)) for src, col in LABEL_DIAGNOSTICS.items()}
            | _agent(history)
            | _machine(run)
        )
        curves.append(history[["epoch", "val_acc", "test_acc"]].assign(experiment=exp_id, seed=seed))
    runs = pd.DataFrame(rows)
    curve = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "runs.csv", runs.to_csv(index=False))
    write_text(out_dir / "curves.csv", curve.to_csv(index=False))
    write_metrics(runs, out_dir / "metrics")
    return runs, curve


def write_metrics(runs: pd.DataFrame, out: Path) -> None:
    """DVC's metrics: one small file per experiment, so `dvc metrics show` prints one readable row each.

    The test accuracy at the best validation epoch (the report's headline metric) with its 95%
    t-interval over seeds, the paper's last-15-epochs mean, macro F1, and the number of seeds;
    every other number stays in runs.csv.
    """
    out.mkdir(parents=True, exist_ok=True)
    keep = set()
    for exp, group in runs.groupby("experiment", sort=False):
        acc, ci95, n = mean_ci(group.test_acc_best_val)
        row = {
            "test_acc": round(acc, 2),
            "ci95": None if math.isnan(ci95) else round(ci95, 2),
            "last15": round(float(group.test_acc_last15.mean()), 2),
            "f1": round(float(group.f1.mean()), 4),
            "seeds": n,
        }
        write_json(out / f"{exp}.json", row)
        keep.add(f"{exp}.json")
    for stale in out.glob("*.json"):
        if stale.name not in keep:
            stale.unlink()


def _agent(history: pd.DataFrame) -> dict[str, float]:
    """AGENT_LAST and AGENT_MEAN over the epochs that logged them; NaN where none did (every non-RL method)."""
    logged = {src: history.get(src, pd.Series(dtype=float)).dropna() for src in AGENT_LAST | AGENT_MEAN}
    last = {dst: float(logged[src].iloc[-1]) if len(logged[src]) else math.nan for src, dst in AGENT_LAST.items()}
    means = {dst: float(logged[src].mean()) for src, dst in AGENT_MEAN.items()}  # mean of nothing: NaN
    return last | means | {f"reward_label_component{k}": _label_component(history, k) for k in ("", "_uniform")}


def _label_component(history: pd.DataFrame, draws: str = "") -> float:
    """The one-step reward probe's label-set variance component as a share of the reward's variance (method of
    moments, `two_way_components`, pooled over the epochs before any clipping at zero, then the share): NaN without
    a probe.
    `draws`: "" for label sets drawn from the policy, "_uniform" for label sets drawn uniformly in-block."""
    cols = [f"agent/reward{draws}_label_sd", f"agent/reward{draws}_batch_sd", f"agent/reward{draws}_label_share"]
    if not set(cols) <= set(history):
        return math.nan
    probe = history[cols].dropna()
    if probe.empty:
        return math.nan
    from rlaux.methods.rl.diagnostics import EVAL_BATCHES, LABEL_SETS

    label_sd, batch_sd, share = (probe[c].to_numpy() for c in cols)
    label, batch, residual = two_way_components(label_sd, batch_sd, share, LABEL_SETS, EVAL_BATCHES)
    total = label + batch + residual
    return float(label / total) if total > 0 else math.nan


def _seconds_per_epoch(run: Path, history: pd.DataFrame) -> float:
    """timing.json's steady-state seconds per epoch, else the mean of history.csv's `seconds` column."""
    timing = run / "timing.json"
    if timing.is_file():
        return float(json.loads(timing.read_text())["seconds_per_epoch"])
    return float(history["seconds"].mean()) if "seconds" in history else math.nan


def _syncs_per_epoch(run: Path) -> float:
    """timing.json's host syncs per steady epoch (counted on CUDA, `rlaux.syncs.EpochSyncs`), else NaN."""
    timing = run / "timing.json"
    return float(json.loads(timing.read_text()).get("syncs_per_epoch", math.nan)) if timing.is_file() else math.nan


def _machine(run: Path) -> dict[str, Any]:
    """Where the run trained (machine.json): node, GPU or CPU, torch threads, one readable string and a date."""
    path = run / "machine.json"
    if not path.is_file():
        return {"node": "", "on": "", "threads": math.nan, "machine": "", "finished": ""}
    m = json.loads(path.read_text())
    on = f"GPU {m['cuda_visible_devices'] or 0}" if m.get("gpu") else "CPU"
    where = {"node": m.get("node", ""), "on": on, "threads": m.get("threads", math.nan)}
    parts = [
        m.get("cpu", ""),
        f"GPU {m['gpu']}" if m.get("gpu") else "no GPU",
        f"torch {m.get('torch', '?')}",
        f"python {m.get('python', '?')}",
    ]
    return where | {"machine": "; ".join(parts), "finished": m.get("finished", "")}
