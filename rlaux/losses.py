"""Focal loss, the hierarchy mask and the batch entropy regulariser (docs/method.md §1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """Per-sample -sum_k t_k (1 - p_k)^gamma log p_k; `target` is (B,) labels or (B, K) soft.

    gamma = 0 gives cross-entropy. No alpha, as in the MAXL and RL-AUX code.
    """
    logp = F.log_softmax(logits, dim=1)
    focal = (1 - logp.exp()).pow(gamma) * logp
    if target.dtype == torch.long:
        return -focal.gather(1, target[:, None]).squeeze(1)
    return -(target * focal).sum(1)


def block_mask(primary: Tensor, num_aux: int, psi: int) -> Tensor:
    """(B, K) bool: auxiliary classes [psi*y, psi*(y+1)) belong to primary class y."""
    k = torch.arange(num_aux, device=primary.device)
    return (k[None, :] // psi) == primary[:, None]


def masked_softmax(logits: Tensor, primary: Tensor, psi: int) -> Tensor:
    """Softmax over the sample's primary block only: exactly zero mass elsewhere."""
    mask = block_mask(primary, logits.shape[1], psi)
    return torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=1)


def authors_mask_softmax(x: Tensor, mask: Tensor) -> Tensor:
    """The authors' `mask_softmax` (docs/method.md §6.4 note), kept for the as-run errata only.

    exp(x - max over the whole row) * mask / (sum of that * mask + 1e-8): when the row's
    maximum lies outside the mask (integer actions in the broadcast erratum), the masked
    entries underflow and the target loses most of its mass, as it did in their runs.
    """
    e = torch.exp(x - x.max(dim=1, keepdim=True).values) * mask
    return e / (e.sum(dim=1, keepdim=True) + 1e-8)


def batch_entropy(probs: Tensor) -> Tensor:
    """H(p_bar) of the batch-mean distribution; maximised to prevent collapse onto one subclass.

    The log is clamped (0 * log(tiny) = 0, same value as xlogy) so the gradient stays finite
    where p_bar_k = 0, i.e. when a batch lacks a primary class: xlogy's is -inf there, which
    turns a masked softmax's backward into NaN.
    """
    p_bar = probs.mean(0)
    return -(p_bar * p_bar.clamp_min(torch.finfo(p_bar.dtype).tiny).log()).sum()


def weight_factor(w: Tensor, scale: float = 10.0, shift: float = 5.0) -> Tensor:
    """Weight-aware methods map w in [0, 1] to a loss factor 2^(scale*w - shift)."""
    return torch.exp2(scale * w - shift)


def combine_aux(aux_loss: Tensor, weight: Tensor, batch_mean_weights: bool = False) -> Tensor:
    """Mean over the batch of weight_i * aux_loss_i.

    `batch_mean_weights` reproduces the WA-MAXL broadcast erratum (docs/method.md §4, §6.7): a (B,)
    loss times a (B, 1) factor is a (B, B) matrix whose mean is mean(loss) * mean(factor).
    """
    if batch_mean_weights:
        return aux_loss.mean() * weight.mean()
    return (weight * aux_loss).mean()
