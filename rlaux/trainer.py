"""The trainer: a run's data, main network, optimiser and seeded batches, and `train_step`, the one place a
main network is updated.

Methods use it (MAXL's lookahead copy, RL-AUX's sandbox step through the same `total_loss`), and the loop
(`rlaux.training`) drives it. The batch order and augmentation of epoch e are pure functions of
(seed, e), so a method can replay an epoch exactly (RL-AUX's train-agent epoch) and a resumed run draws
what the killed one would have drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from rlaux.augment import BatchAugment
from rlaux.batch import AuxTargets, Batch
from rlaux.config import TrainConfig
from rlaux.data import Splits, load_splits
from rlaux.losses import combine_aux, focal_loss
from rlaux.models import AuxNet
from rlaux.runtime import make_deterministic, resolve_device

# Independent random streams, so e.g. a meta pass never shifts the main pass's shuffle.
STREAM_ORDER, STREAM_AUGMENT, STREAM_META = 1, 2, 3


def total_loss(outputs: tuple[Tensor, Tensor], y: Tensor, targets: AuxTargets, cfg: TrainConfig) -> Tensor:
    """mean focal primary loss (times `primary_loss_scale`) + mean of weight_i * focal auxiliary loss_i
    (docs/method.md §1)."""
    pri_logits, aux_logits = outputs
    loss = cfg.primary_loss_scale * focal_loss(pri_logits, y, cfg.focal_gamma).mean()  # x 1.0 is exact
    if targets.target is not None:
        aux = focal_loss(aux_logits, targets.target, cfg.focal_gamma)
        loss = loss + combine_aux(aux, targets.weight, cfg.errata.batch_mean_weights)
    return loss


def sample_losses(outputs: tuple[Tensor, Tensor], y: Tensor, targets: AuxTargets, cfg: TrainConfig) -> Tensor:
    """Each sample's share of `total_loss`, (B,): their mean is the batch's loss (to rounding), so the gradient of
    each is that sample's part of the SGD step (rl.credit sample). The WA-MAXL erratum's mean(loss) x mean(weight)
    splits as loss_i x mean(weight)."""
    pri_logits, aux_logits = outputs
    losses = cfg.primary_loss_scale * focal_loss(pri_logits, y, cfg.focal_gamma)
    if targets.target is not None:
        weight = targets.weight.mean() if cfg.errata.batch_mean_weights else targets.weight
        losses = losses + weight * focal_loss(aux_logits, targets.target, cfg.focal_gamma)
    return losses


def new_model(cfg: TrainConfig, num_classes: int) -> AuxNet:
    return AuxNet(num_classes, cfg.psi * num_classes, cfg.width)


def new_optimizer(model: nn.Module, cfg: TrainConfig) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.StepLR]:
    """SGD without weight decay and StepLR, as the paper's code (docs/method.md §2); momentum only where a profile
    declares it (`momentum`, default 0: plain SGD, the same update bit for bit)."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)


@dataclass
class Trainer:
    cfg: TrainConfig
    data: Splits  # on the device
    device: torch.device
    model: AuxNet
    optimizer: torch.optim.SGD
    scheduler: torch.optim.lr_scheduler.StepLR
    augment: BatchAugment

    @classmethod
    def build(cls, cfg: TrainConfig, data: Splits | None = None) -> Trainer:
        device = resolve_device(cfg.device)
        make_deterministic(device)
        torch.manual_seed(cfg.seed)
        data = (data or load_splits(cfg)).to(device)
        model = new_model(cfg, data.info.num_classes).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt, sched = new_optimizer(model, cfg)
        return cls(cfg, data, device, model, opt, sched, BatchAugment(data.info, device=device))

    def autocast(self) -> torch.autocast:
        """The main network's forward passes: fp32, or bf16 autocast with `precision: bf16`."""
        return torch.autocast(self.device.type, torch.bfloat16, enabled=self.cfg.precision == "bf16")

    @property
    def num_aux(self) -> int:
        return self.cfg.psi * self.data.info.num_classes

    def generator(self, epoch: int, *stream: int) -> torch.Generator:
        """A generator for (seed, epoch, stream...); SeedSequence keeps every such key independent."""
        seed = int(np.random.SeedSequence([self.cfg.seed, epoch, *stream]).generate_state(1, np.uint64)[0])
        return torch.Generator(device=self.device).manual_seed(seed)

    def batches(self, epoch: int, stream: int = STREAM_ORDER) -> Iterator[Batch]:
        """The epoch's batches: slices of a seeded permutation, augmented on the device."""
        train = self.data.train
        order = torch.randperm(len(train), device=self.device, generator=self.generator(epoch, stream))
        g_aug = self.generator(epoch, stream, STREAM_AUGMENT)
        for i in range(0, len(order), self.cfg.batch_size):
            idx = order[i : i + self.cfg.batch_size]
            yield Batch(self.augment(train.x[idx], g_aug), train.y[idx], idx)

    def num_batches(self) -> int:
        return -(-len(self.data.train) // self.cfg.batch_size)

    def train_step(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, targets: AuxTargets
    ) -> Tensor:
        """One SGD step of `model` on the batch; returns the detached loss (no host sync)."""
        model.train()
        with self.autocast():
            loss = total_loss(model(batch.x), batch.y, targets, self.cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()
