"""The contract every auxiliary-task method meets.

A method answers one question per batch: which auxiliary target and which weight does
each sample get? It may learn from what happened through the hooks. The training loop
(`rlaux.training`) never asks which method is running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from rlaux.config import TrainConfig
    from rlaux.data import Split
    from rlaux.training import Trainer


@dataclass
class Batch:
    x: Tensor  # augmented, normalised images (B, 3, 32, 32)
    y: Tensor  # primary labels (B,)
    index: Tensor  # positions in the training split (B,)


@dataclass
class AuxTargets:
    target: Tensor | None  # (B,) hard labels or (B, K) soft targets; None = no auxiliary loss
    weight: Tensor  # (B,) per-sample factor on the auxiliary loss


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
        return cls(trainer.cfg, trainer, trainer.data.train, trainer.data.info.num_classes, trainer.num_aux, trainer.device)


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
