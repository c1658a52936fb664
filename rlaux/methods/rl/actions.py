"""What an agent's action means: the auxiliary target and weight it gives one image (docs/method.md §5).

One action labels one training image. Its first component picks the auxiliary label;
WA-RL adds a second component, a weight bin b in 0..bins-1, read as w = b / (bins - 1)
and turned into the loss factor 2^(10w - 5) (docs/method.md §5; errata.weight_scale_8w3: 2^(8w - 3)).

Label semantics:

* ``rl.target: masked`` (default, the paper's text, docs/method.md §6.10): the action is an auxiliary
  class in 0..K-1, the policy is masked to the sample's primary block (the env supplies the
  block as an action mask; y is not observed), and the chosen class is the hard target.
* ``rl.target: in-block``: the action is a subclass rank in 0..psi-1 and the target is the
  hard label psi*y + a; no mask is needed, as no action lies outside the block.
* ``errata.unmasked_soft_targets`` (docs/method.md §6.10): the authors' code after 2025-04-25. No mask;
  the target is the authors' masked softmax of the action's one-hot over the block: 0.405 on
  an in-block pick and 0.149 on the others, uniform over the block for an out-of-block pick.
* ``errata.broadcast_targets`` (docs/method.md §6.4): the authors' earlier CIFAR-100-20 code, where the
  masked softmax took the batch's integer actions as one row of logits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from rlaux.batch import AuxTargets
from rlaux.losses import authors_mask_softmax, block_mask, weight_factor
from rlaux.registry import METHODS

if TYPE_CHECKING:
    from rlaux.config import TrainConfig


class ActionCodec:
    """Turns a batch of actions into the main network's `AuxTargets`, and says which actions are allowed."""

    def __init__(self, cfg: TrainConfig, num_classes: int) -> None:
        self.psi = cfg.psi
        self.num_aux = cfg.psi * num_classes
        self.in_block = cfg.rl.target == "in-block"
        self.broadcast = cfg.errata.broadcast_targets
        self.soft = cfg.errata.unmasked_soft_targets or self.broadcast
        self.masked = not (self.in_block or self.soft)
        self.weight_aware = METHODS[cfg.method].weight_aware
        self.weight_bins = cfg.rl.weight_bins
        self.weight_scale = (8.0, 3.0) if cfg.errata.weight_scale_8w3 else (10.0, 5.0)
        self.lam = cfg.lam
        if self.broadcast and cfg.batch_size != self.num_aux:
            raise ValueError(
                f"errata.broadcast_targets reproduces a bug that only runs when K = batch_size "
                f"(docs/method.md §6.4: K = B = 100 on cifar100-20); got K={self.num_aux}, batch_size={cfg.batch_size}"
            )

    @property
    def num_labels(self) -> int:
        return self.psi if self.in_block else self.num_aux

    @property
    def space(self) -> spaces.Discrete | spaces.MultiDiscrete:
        if self.weight_aware:
            return spaces.MultiDiscrete([self.num_labels, self.weight_bins])
        return spaces.Discrete(self.num_labels)

    def action_masks(self, y: Tensor) -> Tensor:
        """(B, labels [+ bins]) bool, sb3-contrib's flat layout: the label part is the sample's
        block under `rl.target: masked`, all True otherwise; weight bins are never masked."""
        labels = (
            block_mask(y, self.num_aux, self.psi)
            if self.masked
            else y.new_ones(len(y), self.num_labels, dtype=torch.bool)
        )
        if self.weight_aware:
            labels = torch.cat([labels, y.new_ones(len(y), self.weight_bins, dtype=torch.bool)], dim=1)
        return labels

    def uniform_actions(self, y: Tensor, generator: torch.Generator) -> Tensor:
        """Actions drawn uniformly from the allowed ones (the placebo's labels), shaped as the agent's."""
        masks = self.action_masks(y).float()
        if not self.weight_aware:
            return torch.multinomial(masks, 1, generator=generator)[:, 0]
        parts = masks.split([self.num_labels, self.weight_bins], dim=1)
        return torch.cat([torch.multinomial(m, 1, generator=generator) for m in parts], dim=1)

    def split(self, actions: Tensor) -> tuple[Tensor, Tensor | None]:
        """(label actions (B,), weights w in [0, 1] (B,) or None) from (B,) or (B, 2) actions."""
        if not self.weight_aware:
            return actions.long(), None
        return actions[:, 0].long(), actions[:, 1].float() / (self.weight_bins - 1)

    def aux_class(self, labels: Tensor, y: Tensor) -> Tensor:
        """The auxiliary class in 0..K-1 that each label action names."""
        return self.psi * y + labels if self.in_block else labels

    def label_probs(self, probs: Tensor, y: Tensor) -> Tensor:
        """(B, K) distribution over auxiliary classes from the policy's (B, labels) label distribution."""
        if not self.in_block:
            return probs
        out = probs.new_zeros(len(y), self.num_aux)
        return out.scatter(1, self.psi * y[:, None] + torch.arange(self.psi, device=y.device), probs)

    def targets(self, actions: Tensor, y: Tensor) -> AuxTargets:
        labels, w = self.split(actions)
        weight = (
            torch.full_like(y, self.lam, dtype=torch.float32) if w is None else weight_factor(w, *self.weight_scale)
        )
        if self.broadcast:
            return AuxTargets(self._broadcast(labels, y), weight, chosen=labels)
        if self.soft:
            mask = block_mask(y, self.num_aux, self.psi)
            return AuxTargets(
                authors_mask_softmax(F.one_hot(labels, self.num_aux).float(), mask), weight, chosen=labels
            )
        return AuxTargets(self.aux_class(labels, y), weight)

    def _broadcast(self, labels: Tensor, y: Tensor) -> Tensor:
        """docs/method.md §6.4: the authors' masked softmax of the (B,) integer actions against a (B, K) mask
        broadcast the actions along the class axis, so sample i's target over class k comes from
        the *action of the sample at batch position k*, with their row-max numerics."""
        if len(labels) != self.num_aux:
            raise ValueError(
                f"errata.broadcast_targets needs batches of exactly K={self.num_aux} samples, got {len(labels)}; "
                f"use a training size divisible by the batch size"
            )
        return authors_mask_softmax(labels.float().expand(len(labels), -1), block_mask(y, self.num_aux, self.psi))
