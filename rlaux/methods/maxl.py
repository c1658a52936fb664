"""MAXL and WA-MAXL (Liu et al. 2019; docs/method.md §4): a label network trained by meta-gradients.

Each epoch the loop's main pass trains the main network θ on the label network's soft
auxiliary targets; then `after_epoch` runs MAXL's meta pass, a second full pass over the
training set in a fresh shuffle, where every batch updates the label network φ through
one look-ahead SGD step of the main network:

    θ⁺ = θ − α ∇θ [L_pri(θ) + λ L_aux(θ; t_φ)]        α = the main optimiser's current lr
    φ  ← SGD step on  L_pri(θ⁺) − 0.2 H(p̄_φ)          only φ moves; θ and its BN stats do not

`order: 2` is the exact hypergradient (the paper); `order: 1` is MAXL's finite-difference
approximation, which, like MAXL's first-order script, gives the entropy term no gradient.
The look-ahead reuses `total_loss`, so the two passes cannot disagree about the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn
from torch.func import functional_call

from rlaux.batch import AuxTargets, Batch
from rlaux.config import TrainConfig
from rlaux.losses import batch_entropy, focal_loss, masked_softmax, weight_factor
from rlaux.methods.base import AuxMethod, EpochStats, MethodContext
from rlaux.models import init_weights, mlp_head, trunk_dim, vgg16_trunk
from rlaux.registry import METHODS
from rlaux.trainer import STREAM_META, total_loss

Outputs = tuple[Tensor, Tensor]  # (primary logits, auxiliary logits), the main network's contract
FD_STEP = 0.01  # MAXL's first-order script perturbs θ by ±FD_STEP in norm: ε = FD_STEP / ‖v‖


class LabelNet(nn.Module):
    """Trunk -> masked softmax over the sample's primary block (soft targets) [-> weight w].

    With `weighted` (WA-MAXL) a second head Linear-ReLU-Linear(1)-Sigmoid on the same trunk
    feature gives each sample a weight w in (0, 1). BatchNorm stays in training mode, as in
    MAXL's generator, which is never switched to eval.
    """

    def __init__(self, trunk: nn.Module, dim: int, num_aux: int, psi: int, weighted: bool) -> None:
        super().__init__()
        self.psi = psi
        self.trunk = trunk
        self.label_head = mlp_head(dim, num_aux)
        self.weight_head = nn.Sequential(mlp_head(dim, 1), nn.Sigmoid()) if weighted else None

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        h = self.trunk(x)
        target = masked_softmax(self.label_head(h), y, self.psi)
        return target, None if self.weight_head is None else self.weight_head(h).squeeze(1)


def _on_batch(model: nn.Module, x: Tensor) -> Callable[[Mapping[str, Tensor]], Outputs]:
    """params -> model(x) with those parameters; BN running stats go to throwaway copies."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    return lambda params: functional_call(model, (dict(params), buffers), (x,))


def _lookahead(
    f: Callable[[Mapping[str, Tensor]], Outputs],
    params: Mapping[str, Tensor],
    y: Tensor,
    targets: AuxTargets,
    alpha: float,
    cfg: TrainConfig,
) -> tuple[tuple[Tensor, ...], Tensor]:
    """(v, L_pri(θ⁺)): v = ∇L_pri at θ⁺ = θ − α∇θ L(θ; targets), both without a graph to φ."""
    assert targets.target is not None  # MAXL always has an auxiliary target
    fixed = AuxTargets(targets.target.detach(), targets.weight.detach())
    grads = torch.autograd.grad(total_loss(f(params), y, fixed, cfg), tuple(params.values()))
    fast = {
        name: (p.detach() - alpha * g).requires_grad_() for (name, p), g in zip(params.items(), grads, strict=False)
    }
    loss = focal_loss(f(fast)[0], y, cfg.focal_gamma).mean()
    return torch.autograd.grad(loss, tuple(fast.values()), materialize_grads=True), loss.detach()


def meta_objective(
    model: nn.Module, x: Tensor, y: Tensor, targets: AuxTargets, alpha: float, cfg: TrainConfig
) -> tuple[Tensor, Tensor]:
    """(surrogate, L_pri(θ⁺)): the surrogate's gradient w.r.t. the targets (and through them
    the label network) is the look-ahead hypergradient of L_pri(θ⁺), θ⁺ = θ − α∇θ L(θ; t).

    By the chain rule, with v = ∇L_pri(θ⁺) held fixed, z = f_θ(x) and ż = J_z v:
        dL_pri(θ⁺)/dt = −α ∂/∂t [vᵀ ∇θ L(θ; t)] = −α ∂/∂t ⟨∇_z L(z; t), ż⟩.
    order 2: ż by forward-mode AD, so this is exactly the gradient MAXL gets by
      backpropagating through a create_graph look-ahead (the tests check it against finite
      differences of the look-ahead), ≈20% cheaper on CPU and without the memory of a
      differentiable backward pass.
    order 1: MAXL's finite differences, ⟨∇_z L, ż⟩ ≈ [L(f_{θ+εv}; t) − L(f_{θ−εv}; t)] / 2ε
      with ε = FD_STEP/‖v‖, as its first-order script.
    The main network is only read: parameters enter as new tensors and BatchNorm (in
    training mode) updates throwaway copies of its running statistics.
    """
    f = _on_batch(model, x)
    params = dict(model.named_parameters())
    v, lookahead_loss = _lookahead(f, params, y, targets, alpha, cfg)
    if cfg.maxl.order == 2:
        with torch.no_grad(), fwAD.dual_level():
            dual = f({name: fwAD.make_dual(p.detach(), t) for (name, p), t in zip(params.items(), v, strict=False)})
            z, z_dot = zip(*(fwAD.unpack_dual(o) for o in dual), strict=False)
        z = tuple(o.detach().requires_grad_() for o in z)
        dz = torch.autograd.grad(total_loss(z, y, targets, cfg), z, create_graph=True)
        surrogate = -alpha * sum((g * t).sum() for g, t in zip(dz, z_dot, strict=False))
    else:
        eps = FD_STEP / torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in v]))
        with torch.no_grad():
            plus = f({name: p + eps * t for (name, p), t in zip(params.items(), v, strict=False)})
            minus = f({name: p - eps * t for (name, p), t in zip(params.items(), v, strict=False)})
        surrogate = -alpha * (total_loss(plus, y, targets, cfg) - total_loss(minus, y, targets, cfg)) / (2 * eps)
    return surrogate, lookahead_loss


class MAXL(AuxMethod):
    """MAXL (`maxl`) and WA-MAXL (`wa-maxl`) as one plug-in for the shared loop (docs/method.md §4).

    maxl: each sample's auxiliary loss is weighted by λ = `lam` (the λ ablation runs through
    the same code); `maxl.lookahead_lambda_one` uses λ = 1 in the look-ahead only, as the
    authors' ablation did. wa-maxl: the label network's weight head gives w in (0, 1) and
    the factor 2^(10w−5) in [1/32, 32] replaces λ; w learns only through the meta-gradient
    (differentiable in the look-ahead, detached in the main pass). With
    `errata.batch_mean_weights` (docs/method.md §6.7) both passes apply the factors as the authors'
    code did, one batch multiplier mean(loss)·mean(factor), via `total_loss`.

    Logged per epoch: maxl/label_entropy (mean H(p̄) of the meta pass), maxl/meta_loss (mean
    look-ahead primary loss) and, for wa-maxl, mean and std of the main pass's w and factor.
    """

    def __init__(self, ctx: MethodContext) -> None:
        super().__init__(ctx)
        cfg, width = self.cfg, self.cfg.width
        self.label_net = LabelNet(
            vgg16_trunk(width), trunk_dim(width), ctx.num_aux, cfg.psi, METHODS[cfg.method].weight_aware
        )
        init_weights(self.label_net, "normal" if cfg.maxl.label_init == "xavier_normal" else "uniform")
        self.label_net.to(ctx.device)
        self.optimizer = torch.optim.SGD(
            self.label_net.parameters(), lr=cfg.maxl.lr, weight_decay=cfg.maxl.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
        self.stats = EpochStats()

    def aux_weights(self, batch: Batch, w: Tensor | None, lookahead: bool) -> Tensor:
        if w is not None:
            return weight_factor(w)
        if lookahead and self.cfg.maxl.lookahead_lambda_one:
            return torch.ones_like(batch.y, dtype=torch.float32)
        return self.lam_weights(batch)

    def targets(self, batch: Batch) -> AuxTargets:
        with torch.no_grad():
            target, w = self.label_net(batch.x, batch.y)
        weight = self.aux_weights(batch, w, lookahead=False)
        if w is not None:
            self.stats.add("maxl/weight", w, std=True)
            self.stats.add("maxl/factor", weight, std=True)
        return AuxTargets(target, weight)

    def after_epoch(self, epoch: int) -> dict[str, float]:
        trainer = self.ctx.trainer
        alpha = trainer.optimizer.param_groups[0]["lr"]  # the epoch's lr: the scheduler steps after this hook
        trainer.model.train()  # the look-ahead uses batch statistics, as the main pass does
        for batch in trainer.batches(epoch, STREAM_META):
            self.meta_step(trainer.model, batch, alpha)
        self.scheduler.step()
        return self.stats.read()

    def meta_step(self, model: nn.Module, batch: Batch, alpha: float) -> None:
        """One label-network update on one batch; the main network is only read."""
        target, w = self.label_net(batch.x, batch.y)
        entropy = batch_entropy(target)
        targets = AuxTargets(target, self.aux_weights(batch, w, lookahead=True))
        objective, meta_loss = meta_objective(model, batch.x, batch.y, targets, alpha, self.cfg)
        if self.cfg.maxl.order == 2:  # MAXL's first-order update has no entropy gradient
            objective = objective - self.cfg.maxl.entropy_weight * entropy
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward(inputs=list(self.label_net.parameters()))
        self.optimizer.step()
        self.stats.add("maxl/label_entropy", entropy)
        self.stats.add("maxl/meta_loss", meta_loss)

    def state_dict(self) -> dict:
        return {
            "label_net": self.label_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.label_net.load_state_dict(state["label_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
