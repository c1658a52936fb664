"""Baselines and controls: no auxiliary task, the human task, fixed random labels."""

from __future__ import annotations

import torch

from rlaux.batch import AuxTargets, Batch
from rlaux.methods.base import AuxMethod, MethodContext


class SingleTask(AuxMethod):
    """Primary loss only: the auxiliary head gets no gradient."""

    def targets(self, batch: Batch) -> AuxTargets:
        return AuxTargets(None, torch.zeros_like(batch.y, dtype=torch.float32))


class HumanLabels(AuxMethod):
    """The dataset's human auxiliary labels (CIFAR-100 fine classes), weight λ.

    The config only admits it on cifar100-20 with psi = 5 (checked before any data loads)."""

    def targets(self, batch: Batch) -> AuxTargets:
        assert self.ctx.train.aux is not None  # the config admits `human` only where the data has human labels
        return AuxTargets(self.ctx.train.aux[batch.index], self.lam_weights(batch))


class RandomLabels(AuxMethod):
    """Control: a fixed, seeded random subclass inside each sample's primary block.

    The label is a function of the sample index, drawn once, constant over training: it
    tests how much of an auxiliary gain needs no meaningful auxiliary task at all.
    """

    def __init__(self, ctx: MethodContext) -> None:
        super().__init__(ctx)
        psi = self.cfg.psi
        offset = torch.randint(0, psi, (len(ctx.train),), generator=ctx.generator, device=ctx.device)
        self.labels = ctx.train.y * psi + offset

    def targets(self, batch: Batch) -> AuxTargets:
        return AuxTargets(self.labels[batch.index], self.lam_weights(batch))

    def state_dict(self) -> dict:
        return {"labels": self.labels}

    def load_state_dict(self, state: dict) -> None:
        self.labels = state["labels"].to(self.ctx.device)
