"""The paper's transforms (docs/method.md §3) on whole uint8 batches, on any device.

torchvision's v2 transforms draw one crop/flip per call, which would give every image
of a batch the same augmentation; here each image gets its own offset and flip, drawn
from an explicit generator so runs are reproducible and resumable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rlaux.data import DatasetInfo


class BatchAugment:
    """Random crop (zero padding `pad`) + optional horizontal flip, then normalise.

    The normalisation constants live on the device: torchvision's `normalize` builds them from
    Python lists on every call, a host-to-device copy per batch (same arithmetic otherwise).
    """

    def __init__(self, info: DatasetInfo, pad: int = 4, device: torch.device | str = "cpu") -> None:
        # torch's default dtype: float32, or float64 in the results fingerprint (tests/test_results_version.py)
        self.mean = torch.tensor(info.mean, device=device).view(-1, 1, 1)
        self.std = torch.tensor(info.std, device=device).view(-1, 1, 1)
        self.flip, self.pad = info.flip, pad

    def normalize(self, x: Tensor) -> Tensor:
        return x.to(self.mean.dtype).div_(255).sub(self.mean).div(self.std)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.normalize(self.crop_flip(x, generator))

    def crop_flip(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """uint8 in, uint8 out: one random offset and flip per image."""
        b, c, h, w = x.shape
        p, dev = self.pad, x.device
        shift = torch.randint(0, 2 * p + 1, (2, b), device=dev, generator=generator)
        flip = torch.rand(b, device=dev, generator=generator) < 0.5
        padded = F.pad(x, (p, p, p, p))
        rows = (shift[0, :, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = shift[1, :, None] + torch.arange(w, device=dev)
        if self.flip:
            cols = torch.where(flip[:, None], cols.flip(1), cols)
        cols = cols[:, None, None, :]
        batch_idx = torch.arange(b, device=dev)[:, None, None, None]
        chan_idx = torch.arange(c, device=dev)[None, :, None, None]
        return padded[batch_idx, chan_idx, rows, cols]
