"""What a training batch is, and what a method answers for it: the contract between methods and the trainer.

Kept below both (`rlaux.methods` produces `AuxTargets`, `rlaux.trainer` consumes them, evaluation counts
their labels), so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Batch:
    x: Tensor  # augmented, normalised images (B, 3, 32, 32)
    y: Tensor  # primary labels (B,)
    index: Tensor  # positions in the training split (B,)


@dataclass
class AuxTargets:
    target: Tensor | None  # (B,) hard labels or (B, K) soft targets; None = no auxiliary loss
    weight: Tensor  # (B,) per-sample factor on the auxiliary loss
    chosen: Tensor | None = None  # (B,) the class the method picked, when the target does not say (RL's soft errata)

    def labels(self) -> Tensor | None:
        """The generated auxiliary class per sample, for diagnostics: the pick, the hard target or the soft target's argmax."""
        if self.chosen is not None or self.target is None:
            return self.chosen
        return self.target if self.target.dtype == torch.long else self.target.argmax(1)
