"""MAXL / WA-MAXL: the hypergradient, the generated targets, what a meta step may touch,
the weight-aware factors, and real runs (CLI, history columns, resume)."""

from __future__ import annotations

import copy
import csv
import json

import pytest
import torch
from torch import nn
from torch.func import functional_call

from rlaux import evaluation
from rlaux.batch import AuxTargets, Batch
from rlaux.cli import main
from rlaux.config import build_config
from rlaux.losses import batch_entropy, block_mask, focal_loss, weight_factor
from rlaux.methods import maxl as maxl_module
from rlaux.methods.maxl import LabelNet, meta_objective
from rlaux.models import mlp_head
from rlaux.trainer import STREAM_META, total_loss
from rlaux.training import build_run, train

C, PSI = 2, 2  # tiny problem: 2 primary classes, 4 auxiliary classes, 8x8 images


def tiny_trunk() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())


class TinyNet(nn.Module):
    """The main network's contract, (primary logits, auxiliary logits), with BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk, self.primary, self.auxiliary = tiny_trunk(), mlp_head(64, C), mlp_head(64, C * PSI)

    def forward(self, x):
        h = self.trunk(x)
        return self.primary(h), self.auxiliary(h)


def lookahead_primary_loss(model, x, y, targets, alpha, cfg, create_graph=False):
    """L_pri(θ − α∇θ L(θ; targets)), computed directly: what the hypergradient differentiates
    (with `create_graph`, differentiable into the targets, as MAXL's code computes it)."""
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(
        total_loss(functional_call(model, params, (x,)), y, targets, cfg),
        tuple(params.values()),
        create_graph=create_graph,
    )
    fast = {k: p - alpha * g for (k, p), g in zip(params.items(), grads, strict=False)}
    return focal_loss(functional_call(model, fast, (x,))[0], y, cfg.focal_gamma).mean()


@pytest.mark.parametrize(
    ("method", "batch_mean", "order", "fd_step", "tol"),
    [
        ("maxl", False, 2, None, 1e-4),
        ("wa-maxl", False, 2, None, 1e-4),
        ("wa-maxl", True, 2, None, 1e-4),
        # first order = finite differences: exact as the step shrinks; at MAXL's own step (0.01 in
        # norm) a ReLU/max-pool kink of this tiny net costs ~1%
        ("maxl", False, 1, 1e-4, 1e-4),
        ("wa-maxl", False, 1, 1e-4, 1e-4),
        ("maxl", False, 1, None, 5e-2),
    ],
)
def test_hypergradient_matches_central_finite_differences(monkeypatch, method, batch_mean, order, fd_step, tol):
    if fd_step is not None:
        monkeypatch.setattr(maxl_module, "FD_STEP", fd_step)
    torch.manual_seed(0)
    cfg = build_config(
        {
            "method": method,
            "psi": PSI,
            "lam": 0.7,
            "maxl": {"order": order},
            "errata": {"batch_mean_weights": batch_mean},
        }
    )
    model = TinyNet().double()
    label_net = LabelNet(tiny_trunk(), 64, C * PSI, PSI, weighted=method == "wa-maxl").double()
    x, y, alpha = torch.randn(6, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 1, 0]), 0.5

    def targets() -> AuxTargets:
        t, w = label_net(x, y)
        return AuxTargets(t, torch.full_like(t[:, 0], cfg.lam) if w is None else weight_factor(w))

    surrogate, _ = meta_objective(model, x, y, targets(), alpha, cfg)
    params = list(label_net.parameters())
    grads = torch.autograd.grad(surrogate, params)
    if order == 2:  # MAXL's own way: backpropagate through a create_graph look-ahead
        reference = torch.autograd.grad(
            lookahead_primary_loss(model, x, y, targets(), alpha, cfg, create_graph=True), params
        )
        for g, r in zip(grads, reference, strict=False):
            torch.testing.assert_close(g, r, rtol=1e-7, atol=1e-10)
    for _ in range(3):
        u = [torch.randn_like(p) for p in params]
        h = 1e-5
        with torch.no_grad():
            torch._foreach_add_(params, u, alpha=h)
        plus = lookahead_primary_loss(model, x, y, targets(), alpha, cfg)
        with torch.no_grad():
            torch._foreach_add_(params, u, alpha=-2 * h)
        minus = lookahead_primary_loss(model, x, y, targets(), alpha, cfg)
        with torch.no_grad():
            torch._foreach_add_(params, u, alpha=h)
        numeric = (plus - minus).item() / (2 * h)
        analytic = sum((g * d).sum() for g, d in zip(grads, u, strict=False)).item()
        assert analytic == pytest.approx(numeric, rel=tol), (analytic, numeric)


def test_generated_targets_are_distributions_inside_the_primary_block():
    label_net = LabelNet(tiny_trunk(), 64, C * PSI, PSI, weighted=False)
    y = torch.tensor([0, 1, 1, 0, 1])
    target, w = label_net(torch.randn(5, 3, 8, 8) * 10, y)
    assert w is None
    assert target[~block_mask(y, C * PSI, PSI)].abs().max() < 1e-6
    assert torch.allclose(target.sum(1), torch.ones(5), atol=1e-6)


def test_meta_gradient_stays_finite_when_a_batch_lacks_a_primary_class():
    """p̄ is exactly 0 on an absent class's block; the entropy's gradient must not NaN there."""
    torch.manual_seed(0)
    cfg = build_config({"method": "maxl", "psi": PSI})
    label_net = LabelNet(tiny_trunk(), 64, C * PSI, PSI, weighted=False)
    x, y = torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)  # class 1 absent
    target, _ = label_net(x, y)
    surrogate, _ = meta_objective(TinyNet(), x, y, AuxTargets(target, torch.ones(4)), 0.1, cfg)
    (surrogate - cfg.maxl.entropy_weight * batch_entropy(target)).backward()
    assert all(torch.isfinite(p.grad).all() for p in label_net.parameters())


def build_method(small_config, **overrides):
    return build_run(small_config(train_size=400, **overrides))


@pytest.mark.parametrize(("method", "order"), [("maxl", 2), ("maxl", 1), ("wa-maxl", 2)])
def test_meta_step_moves_only_the_label_network(small_config, method, order):
    trainer, maxl = build_method(small_config, method=method, maxl={"order": order})
    batch = next(trainer.batches(0))
    trainer.train_step(trainer.model, trainer.optimizer, batch, maxl.targets(batch))  # main grads now set
    main_before = {k: t.clone() for k, t in trainer.model.state_dict().items()}
    grads_before = [p.grad.clone() for p in trainer.model.parameters()]
    label_before = [p.detach().clone() for p in maxl.label_net.parameters()]

    maxl.meta_step(trainer.model, next(trainer.batches(0, STREAM_META)), alpha=0.01)

    for k, t in trainer.model.state_dict().items():  # parameters and BN running statistics
        assert torch.equal(t, main_before[k]), k
    assert all(torch.equal(p.grad, g) for p, g in zip(trainer.model.parameters(), grads_before, strict=False))
    assert all(not torch.equal(p, q) for p, q in zip(maxl.label_net.parameters(), label_before, strict=False))


@pytest.mark.parametrize("order", [2, 1])
def test_meta_step_descends_the_lookahead_loss_and_ascends_the_label_entropy(small_config, order):
    """`meta_step` itself, not only `meta_objective`: its label-network update is one SGD step
    φ ← φ − lr (∇φ J + wd φ) on J = L_pri(θ⁺) − w H(p̄_φ) (docs/method.md §4: + w·(−H)),
    each term's gradient taken here by autograd. Between entropy weights 0 and w the update differs by exactly
    +lr w ∇φ H, an ascent on the batch entropy, which a step at w leaves higher than a step at 0.
    order 1: MAXL's first-order update, whose entropy term has no gradient, ignores w."""
    trainer, maxl = build_run(small_config(method="maxl", maxl={"order": order}, train_size=200, width=0.0625))
    model = trainer.model.double().train()  # float64: a step of lr 1e-3 is read to ~1e-12 relative
    net = maxl.label_net.double()
    full = next(trainer.batches(0, STREAM_META))
    batch = Batch(full.x[:24].double(), full.y[:24], full.index[:24])
    alpha, weight = 0.01, 0.2
    lr, wd = maxl.optimizer.param_groups[0]["lr"], maxl.optimizer.param_groups[0]["weight_decay"]
    assert (lr, wd) == (1e-3, 5e-4)
    start = copy.deepcopy(maxl.state_dict())
    phi = [p.detach().clone() for p in net.parameters()]

    def update(entropy_weight: float) -> tuple[list[torch.Tensor], float]:
        """(φ_after − φ, H(p̄) after the step) of one meta_step from the same start."""
        maxl.load_state_dict(copy.deepcopy(start))
        maxl.cfg.maxl.entropy_weight = entropy_weight
        maxl.meta_step(model, batch, alpha)
        with torch.no_grad():
            entropy = batch_entropy(net(batch.x, batch.y)[0]).item()
        return [p.detach() - q for p, q in zip(net.parameters(), phi, strict=True)], entropy

    plain, entropy_plain = update(0.0)
    regularised, entropy_regularised = update(weight)

    maxl.load_state_dict(copy.deepcopy(start))
    params = list(net.parameters())
    target, _ = net(batch.x, batch.y)
    weights = torch.full_like(batch.y, maxl.cfg.lam, dtype=torch.float64)
    surrogate, _ = meta_objective(model, batch.x, batch.y, AuxTargets(target, weights), alpha, maxl.cfg)
    grad_lookahead = torch.autograd.grad(surrogate, params, retain_graph=True)
    grad_entropy = torch.autograd.grad(batch_entropy(target), params)

    def close(actual, expected, what: str) -> None:
        for a, e in zip(actual, expected, strict=True):
            torch.testing.assert_close(a, e, rtol=1e-6, atol=1e-12, msg=lambda m: f"{what}: {m}")

    entropy_part = [lr * weight * h for h in grad_entropy]  # + lr w ∇H: the step ascends the entropy
    assert sum(d.norm() ** 2 for d in entropy_part).sqrt() > 0.01 * sum(d.norm() ** 2 for d in plain).sqrt()
    close(plain, [-lr * (g + wd * p) for g, p in zip(grad_lookahead, phi, strict=True)], "update at weight 0")
    if order == 2:
        close([r - p for r, p in zip(regularised, plain, strict=True)], entropy_part, "entropy part of the update")
        expected = [-lr * (g - weight * h + wd * p) for g, h, p in zip(grad_lookahead, grad_entropy, phi, strict=True)]
        close(regularised, expected, f"update at weight {weight}")
        assert entropy_regularised > entropy_plain, (entropy_regularised, entropy_plain)
    else:
        close(regularised, plain, "first-order update: the entropy weight must not matter")


def test_wa_factors_are_per_sample_and_batch_mean_erratum_is_exact(small_config):
    trainer, wa = build_method(small_config, method="wa-maxl", errata={"batch_mean_weights": True})
    batch = next(trainer.batches(0))
    targets = wa.targets(batch)
    assert targets.weight.min() >= 1 / 32 and targets.weight.max() <= 32
    assert targets.weight.std() > 0
    assert not targets.weight.requires_grad  # main pass: the weight head learns by meta-gradient only
    with torch.no_grad():
        pri, aux_logits = trainer.model(batch.x)
        aux = focal_loss(aux_logits, targets.target)
        expected = focal_loss(pri, batch.y).mean() + aux.mean() * targets.weight.mean()
        assert torch.equal(total_loss((pri, aux_logits), batch.y, targets, wa.cfg), expected)
        assert not torch.isclose((targets.weight * aux).mean(), aux.mean() * targets.weight.mean())


def read_history(out):
    return list(csv.DictReader(open(out / "history.csv")))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["maxl", "wa-maxl"])
def test_cli_trains_two_epochs_and_writes_metrics_and_history(data_root, tmp_path, method):
    out = tmp_path / method
    main(
        [
            "train",
            "--dataset",
            "cifar10",
            "--method",
            method,
            "--epochs",
            "2",
            "--train-size",
            "1000",
            "--test-size",
            "500",
            "--width",
            "0.25",
            "--data-root",
            str(data_root),
            "--device",
            "cpu",
            "--progress",
            "false",
            "--out",
            str(out),
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    row = {"epoch": 1, "val_acc": 0.0, "test_acc": 0.0, "test_precision": 0.0, "test_recall": 0.0, "test_f1": 0.0}
    assert set(evaluation.summarize([row])) | {"config"} <= set(metrics)
    assert metrics["config"]["method"] == method and metrics["epochs"] == 2
    history = read_history(out)
    logged = ["maxl/label_entropy", "maxl/meta_loss"]
    logged += (
        ["maxl/weight_mean", "maxl/weight_std", "maxl/factor_mean", "maxl/factor_std"] if method == "wa-maxl" else []
    )
    for r in history:
        for key in logged:
            assert float(r[key]) == float(r[key]), key  # present and not NaN
        assert 0 < float(r["maxl/label_entropy"]) <= torch.log(torch.tensor(50.0)).item() + 1e-6
    if method == "wa-maxl":
        assert 1 / 32 <= float(history[-1]["maxl/factor_mean"]) <= 32


@pytest.mark.slow
def test_resumed_run_gives_identical_metrics(small_config, tmp_path, kill_after_first_epoch):
    settings = dict(method="maxl", epochs=2, train_size=600, test_size=300)
    straight = small_config(out=str(tmp_path / "straight"), **settings)
    train(straight)
    resumed = small_config(out=str(tmp_path / "resumed"), **settings)
    kill_after_first_epoch(resumed)
    train(resumed, resume=True)
    strip = lambda m: {k: v for k, v in m.items() if k != "config"}  # noqa: E731
    assert strip(json.loads((resumed.out / "metrics.json").read_text())) == strip(
        json.loads((straight.out / "metrics.json").read_text())
    )
    assert read_history(resumed.out)[1]["maxl/meta_loss"] == read_history(straight.out)[1]["maxl/meta_loss"]
