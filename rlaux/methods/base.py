"""The contract every auxiliary-task method meets.

A method answers one question per batch: which auxiliary target and which weight does
each sample get? It may learn from what happened through the hooks. The training loop
(`rlaux.training`) never asks which method is running.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from rlaux.batch import AuxTargets, Batch

if TYPE_CHECKING:
    from rlaux.config import TrainConfig
    from rlaux.data import Split
    from rlaux.trainer import Trainer


@dataclass
class MethodContext:
    cfg: TrainConfig
    trainer: Trainer  # the loop: model, optimiser, batches, train_step
    train: Split  # the training split, on the device
    num_classes: int
    num_aux: int
    device: torch.device
    generator: torch.Generator = field(init=False)  # the method's own seeded randomness

    def __post_init__(self) -> None:
        self.generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 7919)

    @classmethod
    def of(cls, trainer: Trainer) -> MethodContext:
        return cls(
            trainer.cfg, trainer, trainer.data.train, trainer.data.info.num_classes, trainer.num_aux, trainer.device
        )


class AuxMethod:
    """Base class: no auxiliary loss, no learning. Subclasses override what they need."""

    def __init__(self, ctx: MethodContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg

    def targets(self, batch: Batch) -> AuxTargets:
        raise NotImplementedError

    def before_epoch(self, epoch: int) -> dict[str, float]:
        """Runs before the loop's epoch (RL-AUX trains its agent here)."""
        return {}

    def after_step(self, batch: Batch, targets: AuxTargets) -> None:
        """Runs after each main-network update; accumulate on the device, report per epoch."""

    def after_epoch(self, epoch: int) -> dict[str, float]:
        """Runs after the epoch's main pass, before the LR scheduler steps (MAXL's meta pass)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def lam_weights(self, batch: Batch) -> Tensor:
        return torch.full_like(batch.y, self.cfg.lam, dtype=torch.float32)


class EpochStats:
    """Per-epoch means (optionally stds) summed on the device; `read` syncs once and resets."""

    def __init__(self) -> None:
        self.sums: dict[str, tuple[Tensor, int, bool]] = {}

    def add(self, name: str, values: Tensor, std: bool = False) -> None:
        v = values.detach().double().flatten()
        s = torch.stack([v.sum(), v.square().sum()])
        if name in self.sums:
            prev, n, _ = self.sums[name]
            s, count = prev + s, n + v.numel()
        else:
            count = v.numel()
        self.sums[name] = (s, count, std)

    def read(self) -> dict[str, float]:
        if not self.sums:
            return {}
        totals = torch.stack([s for s, _, _ in self.sums.values()]).tolist()
        out: dict[str, float] = {}
        for (name, (_, n, std)), (s, sq) in zip(self.sums.items(), totals, strict=False):
            mean = s / n
            if std:
                out[f"{name}_mean"], out[f"{name}_std"] = mean, math.sqrt(max(sq / n - mean * mean, 0.0))
            else:
                out[name] = mean
        self.sums.clear()
        return out
