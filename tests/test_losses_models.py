"""Losses against hand computations; model output shapes."""

from __future__ import annotations

import math

import pytest
import torch

from rlaux.losses import (
    authors_mask_softmax,
    batch_entropy,
    block_mask,
    combine_aux,
    focal_loss,
    masked_softmax,
    weight_factor,
)
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


def check_xavier(module: torch.nn.Module, kind: str) -> int:
    """Every conv/linear layer: zero bias and xavier weights of the given kind; every BN: (1, 0).

    Both kinds have std sqrt(2 / (fan_in + fan_out)); uniform is bounded by sqrt(3) std while
    a normal puts 8.3% of its weights beyond that bound, which tells them apart."""
    layers = 0
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
        if not isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            continue
        layers += 1
        w = m.weight.detach().flatten()
        receptive = m.weight[0, 0].numel()
        std = math.sqrt(2 / ((m.weight.shape[1] + m.weight.shape[0]) * receptive))
        assert torch.all(m.bias == 0)
        beyond = (w.abs() > math.sqrt(3) * std).float().mean().item()
        if kind == "uniform":
            assert beyond == 0, m
        elif w.numel() >= 2000:  # enough weights for the tail share to be sharp (binomial sd < 0.7%)
            assert 0.05 < beyond < 0.12, (m, beyond)
        if w.numel() >= 2000:
            assert w.std().item() == pytest.approx(std, rel=0.1), m
    return layers


def test_main_network_init_is_xavier_uniform_with_zero_bias():
    assert check_xavier(AuxNet(10, 50, width=0.25), "uniform") == 13 + 4


@pytest.mark.parametrize(
    "label_init, kind", [(None, "normal"), ("xavier_normal", "normal"), ("xavier_uniform", "uniform")]
)
def test_maxl_label_network_init_follows_the_switch(small_config, label_init, kind):
    """Default: xavier_normal, as MAXL's code (docs/method.md §4); the switch gives xavier_uniform."""
    from rlaux.training import build_run

    overrides = {} if label_init is None else {"maxl": {"label_init": label_init}}
    _, method = build_run(small_config(method="wa-maxl", train_size=200, test_size=100, **overrides))
    assert check_xavier(method.label_net, kind) == 13 + 4  # 13 convs, label head and weight head: 2 linears each


def test_authors_mask_softmax_by_hand():
    """docs/method.md §6 note on erratum 4: max over the whole row, then mask, then +1e-8 in the denominator."""
    x = torch.tensor([[0.0, 1.0, 30.0, 2.0], [3.0, 3.0, 0.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    e0 = [math.exp(-30), math.exp(-29)]  # row max 30 sits outside the mask: the block keeps e^-30, e^-29
    e1 = [math.exp(-3), math.exp(-2)]
    expected = torch.tensor(
        [
            [e0[0] / (sum(e0) + 1e-8), e0[1] / (sum(e0) + 1e-8), 0, 0],
            [0, 0, e1[0] / (sum(e1) + 1e-8), e1[1] / (sum(e1) + 1e-8)],
        ]
    )
    torch.testing.assert_close(authors_mask_softmax(x, mask), expected, rtol=1e-5, atol=0)
    assert authors_mask_softmax(x, mask)[0].sum() < 1e-4  # the mass the authors' targets lost
    assert authors_mask_softmax(x, mask)[1].sum() == pytest.approx(1.0, abs=1e-6)
