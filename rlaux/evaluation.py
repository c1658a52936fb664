"""Accuracy, macro precision/recall/F1 and the paper's last-15-epochs metric.

Accuracies are in percent (as the paper reports them); precision, recall and F1 are
fractions in [0, 1] (as in the paper's Figures 11-12).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from sklearn.metrics import normalized_mutual_info_score, precision_recall_fscore_support
from torch import Tensor, nn

from rlaux.data import Split, Splits
from rlaux.methods.base import AuxTargets
from rlaux.models import predict

PAPER_LAST_EPOCHS = 15


def scores(pred: Tensor, y: Tensor) -> dict[str, float]:
    p, r, f, _ = precision_recall_fscore_support(y.cpu().numpy(), pred.cpu().numpy(), average="macro", zero_division=0)
    return {"acc": 100.0 * (pred == y).float().mean().item(), "precision": float(p), "recall": float(r), "f1": float(f)}


def evaluate_split(model: nn.Module, split: Split, prepare: Callable[[Tensor], Tensor], batch_size: int) -> dict[str, float]:
    return scores(predict(model, split.x, batch_size, prepare), split.y)


def evaluate_epoch(model: nn.Module, data: Splits, prepare: Callable[[Tensor], Tensor], batch_size: int) -> dict[str, float]:
    val = evaluate_split(model, data.val, prepare, batch_size)
    test = evaluate_split(model, data.test, prepare, batch_size)
    return {"val_acc": val["acc"]} | {f"test_{k}": v for k, v in test.items()}


class LabelStats:
    """What the auxiliary labels a method generated in one epoch look like (SPEC §6.10).

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


def summarize(history: list[dict]) -> dict[str, float | int]:
    """The paper's metric plus the honest one: test accuracy at the best validation epoch."""
    last = history[-min(PAPER_LAST_EPOCHS, len(history)) :]
    best = max(range(len(history)), key=lambda i: (history[i]["val_acc"], i))
    row = history[best]
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
    import csv
    import json

    from rlaux.augment import BatchAugment
    from rlaux.io import write_json
    from rlaux.config import build_config
    from rlaux.data import load_splits
    from rlaux.training import new_model, resolve_device

    snapshot = json.loads((run_dir / "config.json").read_text())
    cfg = build_config(snapshot, {"data_root": str(data_root)} if data_root else {}, {"device": device} if device else {})
    with open(run_dir / "history.csv") as f:
        history = [{k: float(v) if v not in ("", None) else None for k, v in r.items()} for r in csv.DictReader(f)]
    data = load_splits(cfg)
    on = resolve_device(cfg.device)
    model = new_model(cfg, data.info.num_classes).to(on)
    model.load_state_dict(torch.load(run_dir / "best.pt", map_location=on))
    test = evaluate_split(model, data.test.to(on), BatchAugment(data.info).normalize, cfg.eval_batch_size)
    metrics = summarize(history) | {"test_acc_best_val": test["acc"], "precision": test["precision"],
                                    "recall": test["recall"], "f1": test["f1"]}
    metrics["best_val_epoch"] = int(metrics["best_val_epoch"])
    metrics["epochs"] = int(metrics["epochs"])
    write_json(run_dir / "metrics.json", metrics | {"config": cfg.snapshot()})
    return metrics
