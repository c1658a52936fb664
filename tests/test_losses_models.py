"""Losses against hand computations; model output shapes."""

from __future__ import annotations

import math

import pytest
import torch

from rlaux.losses import batch_entropy, block_mask, combine_aux, focal_loss, masked_softmax, weight_factor
from rlaux.models import AuxNet


def test_focal_loss_matches_hand_computation():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]]))
    expected = -((1 - 0.7) ** 2) * math.log(0.7)
    assert focal_loss(logits, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)
    soft = torch.tensor([[0.5, 0.5, 0.0]])
    expected_soft = -0.5 * (0.3**2) * math.log(0.7) - 0.5 * (0.8**2) * math.log(0.2)
    assert focal_loss(logits, soft).item() == pytest.approx(expected_soft, rel=1e-6)


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 3, 1, 2, 2])
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert torch.allclose(focal_loss(logits, y, gamma=0.0), ce, atol=1e-6)


def test_masked_softmax_puts_zero_mass_off_block():
    logits = torch.randn(3, 10)
    y = torch.tensor([0, 1, 1])
    p = masked_softmax(logits, y, psi=5)
    assert torch.allclose(p.sum(1), torch.ones(3))
    assert torch.all(p[block_mask(y, 10, 5) == 0] == 0)
    assert torch.allclose(p[0, :5], torch.softmax(logits[0, :5], 0))


def test_masked_softmax_of_one_hot_gives_paper_numbers():
    p = masked_softmax(torch.nn.functional.one_hot(torch.tensor([2]), 10).float(), torch.tensor([0]), psi=5)
    assert p[0, 2].item() == pytest.approx(0.405, abs=1e-3) and p[0, 0].item() == pytest.approx(0.149, abs=1e-3)


def test_batch_entropy_by_hand():
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # mean (0.5, 0.5)
    assert batch_entropy(probs).item() == pytest.approx(math.log(2))
    assert batch_entropy(torch.tensor([[1.0, 0.0], [1.0, 0.0]])).item() == 0.0


def test_weight_factor_range_and_batch_mean_erratum():
    assert weight_factor(torch.tensor([0.0, 0.5, 1.0])).tolist() == [1 / 32, 1.0, 32.0]
    loss, w = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 0.0])
    assert combine_aux(loss, w).item() == 1.0
    assert combine_aux(loss, w, batch_mean_weights=True).item() == 2.0
    broadcast = loss * w[:, None]  # what the authors' code computed: (B,) * (B, 1) -> (B, B)
    assert combine_aux(loss, w, batch_mean_weights=True).item() == broadcast.mean().item()


@pytest.mark.parametrize("width, dim", [(1.0, 512), (0.25, 128)])
def test_model_heads_shapes(width, dim):
    model = AuxNet(num_classes=20, num_aux=100, width=width)
    pri, aux = model(torch.randn(2, 3, 32, 32))
    assert pri.shape == (2, 20) and aux.shape == (2, 100)
    assert model.primary[0].in_features == dim


def test_init_is_xavier_with_zero_bias():
    model = AuxNet(10, 50, width=0.25)
    conv = model.trunk[0]
    bound = math.sqrt(6 / (conv.in_channels * 9 + conv.out_channels * 9))
    assert conv.weight.abs().max() <= bound and torch.all(conv.bias == 0)
    assert torch.all(model.trunk[1].weight == 1)
