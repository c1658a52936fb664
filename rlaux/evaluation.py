"""Accuracy, macro precision/recall/F1 and the paper's last-15-epochs metric.

Accuracies are in percent (as the paper reports them); precision, recall and F1 are
fractions in [0, 1] (as in the paper's Figures 11-12).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from sklearn.metrics import normalized_mutual_info_score, precision_recall_fscore_support
from torch import Tensor, nn

from rlaux.batch import AuxTargets
from rlaux.data import Split, Splits
from rlaux.errors import CheckpointError, ConfigError, one_line
from rlaux.models import predict

PAPER_LAST_EPOCHS = 15


def scores(pred: Tensor, y: Tensor) -> dict[str, float]:
    p, r, f, _ = precision_recall_fscore_support(y.cpu().numpy(), pred.cpu().numpy(), average="macro", zero_division=0)
    return {"acc": 100.0 * (pred == y).float().mean().item(), "precision": float(p), "recall": float(r), "f1": float(f)}


def evaluate_split(
    model: nn.Module, split: Split, prepare: Callable[[Tensor], Tensor], batch_size: int
) -> dict[str, float]:
    return scores(predict(model, split.x, batch_size, prepare), split.y)


def evaluate_epoch(
    model: nn.Module, data: Splits, prepare: Callable[[Tensor], Tensor], batch_size: int
) -> dict[str, float]:
    val = evaluate_split(model, data.val, prepare, batch_size)
    test = evaluate_split(model, data.test, prepare, batch_size)
    return {"val_acc": val["acc"]} | {f"test_{k}": v for k, v in test.items()}


class LabelStats:
    """What the auxiliary labels a method generated in one epoch look like (docs/method.md §6.10).

    A label is the class the method picked (`AuxTargets.labels`). `labels/in_block`: share of
    labels inside the sample's own primary block; `labels/entropy`: entropy (nats) of the
    labels given to one primary class's samples, averaged over classes (log psi when a block's
    subclasses are used evenly, 0 when it collapses onto one); `labels/nmi`: normalised mutual
    information with the human fine labels, where the dataset has them (CIFAR-100-20).
    """

    def __init__(self, num_classes: int, num_aux: int, device: torch.device) -> None:
        self.psi = num_aux // num_classes
        self.counts = torch.zeros(num_classes, num_aux, device=device)  # primary class x generated label
        self.labels: list[Tensor] = []
        self.human: list[Tensor] = []

    def add(self, y: Tensor, targets: AuxTargets, human: Tensor | None) -> None:
        labels = targets.labels()
        if labels is None:
            return
        self.counts.index_put_((y, labels), torch.ones_like(labels, dtype=self.counts.dtype), accumulate=True)
        if human is not None:
            self.labels.append(labels)
            self.human.append(human)

    def read(self) -> dict[str, float]:
        total = self.counts.sum()
        if total == 0:
            return {}
        per_class = self.counts[self.counts.sum(1) > 0]
        p = per_class / per_class.sum(1, keepdim=True)
        in_block = self.counts.view(len(self.counts), -1, self.psi).diagonal(dim1=0, dim2=1).sum() / total
        row = {"labels/in_block": in_block.item(), "labels/entropy": -torch.special.xlogy(p, p).sum(1).mean().item()}
        if self.labels:
            human, labels = torch.cat(self.human).cpu().numpy(), torch.cat(self.labels).cpu().numpy()
            row["labels/nmi"] = float(normalized_mutual_info_score(human, labels))
        return row


def best_epoch(history: list[dict]) -> int:
    """The index of the best validation epoch, a tie going to the earliest epoch of the maximum (declared in issue
    34; a small validation set ties often). Training keeps best.pt by the same rule."""
    return max(range(len(history)), key=lambda i: (history[i]["val_acc"], -i))


def summarize(history: list[dict]) -> dict[str, float | int]:
    """The paper's metric plus the honest one: test accuracy at the best validation epoch (`best_epoch`)."""
    last = history[-min(PAPER_LAST_EPOCHS, len(history)) :]
    row = history[best_epoch(history)]
    return {
        "test_acc_last15": sum(r["test_acc"] for r in last) / len(last),
        "test_acc_final": history[-1]["test_acc"],
        "test_acc_best_val": row["test_acc"],
        "best_val_epoch": row["epoch"],
        "val_acc_best": row["val_acc"],
        "precision": row["test_precision"],
        "recall": row["test_recall"],
        "f1": row["test_f1"],
        "epochs": len(history),
    }


def timing(history: list[dict], train_images: int, device: torch.device) -> dict[str, float | str]:
    """Wall-clock speed; kept out of metrics.json so identical seeds give identical metrics."""
    secs = [r["seconds"] for r in history]
    steady = secs[1:] or secs  # the first epoch pays for warm-up
    per_epoch = sum(steady) / len(steady)
    return {"seconds_per_epoch": per_epoch, "images_per_second": train_images / per_epoch, "device": str(device)}


def reevaluate(run_dir: Path, data_root: Path | None = None, device: str | None = None) -> dict:
    """Recompute a finished run's test scores from its best-validation checkpoint."""
    import json

    from rlaux.augment import BatchAugment
    from rlaux.checkpoint import read_weights
    from rlaux.config import build_config
    from rlaux.data import load_splits
    from rlaux.io import write_json
    from rlaux.runtime import resolve_device
    from rlaux.trainer import new_model

    run_dir = Path(run_dir)
    fix = f"re-run training into {run_dir} (or pass the right run directory)"
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {run_dir} does not exist; pass the --out of a finished `rlaux train`")
    for name in ("config.json", "history.csv", "best.pt"):
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir / name} is missing, so {run_dir} is not a finished run; {fix}")
    try:
        snapshot = json.loads((run_dir / "config.json").read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(one_line(f"{run_dir / 'config.json'} is not valid JSON ({err}); {fix}")) from None
    if not isinstance(snapshot, dict):
        raise CheckpointError(f"{run_dir / 'config.json'} must hold a config mapping; {fix}")
    try:
        cfg = build_config(
            snapshot, {"data_root": str(data_root)} if data_root else {}, {"device": device} if device else {}
        )
    except ConfigError as err:
        raise CheckpointError(f"{run_dir / 'config.json'} (written by another rlaux version?): {err}; {fix}") from None
    history = _read_history(run_dir / "history.csv", fix)
    data = load_splits(cfg)
    on = resolve_device(cfg.device)
    model = new_model(cfg, data.info.num_classes).to(on)
    model.load_state_dict(read_weights(run_dir / "best.pt", model, on, fix))
    test = evaluate_split(model, data.test.to(on), BatchAugment(data.info, device=on).normalize, cfg.eval_batch_size)
    metrics = summarize(history) | {
        "test_acc_best_val": test["acc"],
        "precision": test["precision"],
        "recall": test["recall"],
        "f1": test["f1"],
    }
    metrics["best_val_epoch"] = int(metrics["best_val_epoch"])
    metrics["epochs"] = int(metrics["epochs"])
    write_json(run_dir / "metrics.json", metrics | {"config": cfg.snapshot()})
    return metrics


HISTORY_COLUMNS = ("epoch", "val_acc", "test_acc", "test_precision", "test_recall", "test_f1")


def _read_history(path: Path, fix: str) -> list[dict]:
    """history.csv as rows of floats; a damaged file is a CheckpointError naming it."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        missing = [c for c in HISTORY_COLUMNS if not rows or c not in rows[0]]
        if missing:
            raise CheckpointError(f"{path} lacks the columns {', '.join(missing)} (or has no rows); {fix}")
        history = [{k: float(v) if v not in ("", None) else None for k, v in r.items()} for r in rows]
    except CheckpointError:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as err:
        raise CheckpointError(one_line(f"{path} cannot be read ({type(err).__name__}: {err}); {fix}")) from None
    if any(r[c] is None for r in history for c in HISTORY_COLUMNS):
        raise CheckpointError(f"{path} has empty cells in {', '.join(HISTORY_COLUMNS)}; {fix}")
    return history
