"""What an agent's action means: the auxiliary target and weight it gives one image (SPEC §5).

One action labels one training image. Its first component picks the auxiliary label;
WA-RL adds a second component, a weight bin b in 0..bins-1, read as w = b / (bins - 1)
and turned into the loss factor 2^(10w - 5) (SPEC §5; errata.weight_scale_8w3: 2^(8w - 3)).

Label semantics (`rl.target`):

* ``masked-soft`` (default, the authors' fixed code): the action is an auxiliary class in
  0..K-1 and the target is the masked softmax of its one-hot vector over the sample's
  primary block, i.e. 0.405 on the pick and 0.149 on the other four classes for psi = 5.
  The action itself is never masked: an out-of-block pick gives a one-hot of zeros over
  the block, hence a uniform target over the block.
* ``in-block``: the action is a subclass rank in 0..psi-1 and the target is the hard
  label psi*y + a. The agent does not see y, so it chooses "which subclass of whatever
  block this image belongs to"; no action is wasted outside the block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from rlaux.losses import masked_softmax, weight_factor
from rlaux.methods.base import AuxTargets

if TYPE_CHECKING:
    from rlaux.config import TrainConfig


class ActionCodec:
    """Turns a batch of actions into the main network's `AuxTargets` (and back into statistics)."""

    def __init__(self, cfg: TrainConfig, num_classes: int) -> None:
        self.psi = cfg.psi
        self.num_aux = cfg.psi * num_classes
        self.in_block = cfg.rl.target == "in-block"
        self.weight_aware = cfg.method == "wa-rl"
        self.weight_bins = cfg.rl.weight_bins
        self.weight_scale = (8.0, 3.0) if cfg.errata.weight_scale_8w3 else (10.0, 5.0)
        self.lam = cfg.lam
        self.broadcast = cfg.errata.broadcast_targets
        if self.broadcast and (self.in_block or cfg.batch_size != self.num_aux):
            raise ValueError(
                f"errata.broadcast_targets reproduces a bug that only runs when K = batch_size with rl.target "
                f"'masked-soft' (SPEC §6.4: K = B = 100 on cifar100-20); got K={self.num_aux}, "
                f"batch_size={cfg.batch_size}, rl.target={cfg.rl.target!r}"
            )

    @property
    def num_labels(self) -> int:
        return self.psi if self.in_block else self.num_aux

    @property
    def space(self) -> spaces.Discrete | spaces.MultiDiscrete:
        if self.weight_aware:
            return spaces.MultiDiscrete([self.num_labels, self.weight_bins])
        return spaces.Discrete(self.num_labels)

    def split(self, actions: Tensor) -> tuple[Tensor, Tensor | None]:
        """(label actions (B,), weights w in [0, 1] (B,) or None) from (B,) or (B, 2) actions."""
        if not self.weight_aware:
            return actions.long(), None
        return actions[:, 0].long(), actions[:, 1].float() / (self.weight_bins - 1)

    def aux_class(self, actions: Tensor, y: Tensor) -> Tensor:
        """The auxiliary class each action names, in 0..K-1."""
        labels, _ = self.split(actions)
        return self.psi * y + labels if self.in_block else labels

    def targets(self, actions: Tensor, y: Tensor) -> AuxTargets:
        labels, w = self.split(actions)
        weight = torch.full_like(y, self.lam, dtype=torch.float32) if w is None else weight_factor(w, *self.weight_scale)
        if self.in_block:
            return AuxTargets(self.psi * y + labels, weight)
        if self.broadcast:
            return AuxTargets(self._broadcast(labels, y), weight)
        return AuxTargets(masked_softmax(F.one_hot(labels, self.num_aux).float(), y, self.psi), weight)

    def _broadcast(self, labels: Tensor, y: Tensor) -> Tensor:
        """SPEC §6.4: the authors' masked softmax of the (B,) integer actions against a (B, K) mask
        broadcast the actions along the class axis, so sample i's target over class k is the
        softmax over its block of the *actions of the samples at batch positions k*."""
        if len(labels) != self.num_aux:
            raise ValueError(f"errata.broadcast_targets needs batches of exactly K={self.num_aux} samples, got {len(labels)}; "
                             f"use a training size divisible by the batch size")
        return masked_softmax(labels.float().expand(len(labels), -1), y, self.psi)
