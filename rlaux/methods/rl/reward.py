"""What a labelled batch earns the agent: a disposable copy of the main network, and the `Reward` designs.

The paper's reward (Eq. 3-4, docs/method.md §5): a copy of the main network takes one SGD step on
the agent's labels, and the reward is

    r = -mean focal primary loss of the copy on a fresh batch of `rl.reward_batch` training images
        + rl.entropy_weight * H(p_bar),   p_bar = the policy's mean label distribution on them.

`make_reward` builds one `Reward` per run from `rl.reward`, `rl.reward_pairing` and `rl.placebo` (the
config has validated their combination): `PaperReward`, `PairedReward` (the loss before the step minus
the loss after it), `OracleReward` (a control: the agreement with the human task, no copy trained) and
`Placebo` (a control wrapped around the paper's: the copy trains on uniform labels, so the reward
cannot depend on the agent's). With per-sample credit a reward also splits itself among the batch's
actions, the shares adding up to the batch's reward (to first order for the paired one).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, jvp

from rlaux.batch import AuxTargets, Batch
from rlaux.evaluation import LabelStats
from rlaux.losses import batch_entropy, focal_loss
from rlaux.methods.rl.actions import ActionCodec
from rlaux.methods.rl.agent import label_probs
from rlaux.trainer import new_optimizer, sample_losses

if TYPE_CHECKING:
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    from rlaux.config import RLConfig
    from rlaux.trainer import Trainer

STREAM_REWARD = 4  # the reward batches' random stream, independent of the epoch's order and augmentation
STREAM_PLACEBO = 5  # the placebo's uniform labels
STREAM_ORACLE = 7  # the oracle control's noise


class Sandbox:
    """A disposable copy of the main network for the agent to train (train-agent mode), and its reward.

    The canonical network (`trainer.model`) is never touched: every episode starts from a
    copy of it with a fresh optimiser at the current learning rate, so the agent epoch
    cannot leak into the main network, and the next main epoch starts where the last ended.
    `step` labels a batch, lets the run's `Reward` score it, and keeps what the epoch's log reads.
    """

    def __init__(self, trainer: Trainer, codec: ActionCodec, per_sample: bool = False) -> None:
        self.trainer, self.codec, self.cfg = trainer, codec, trainer.cfg
        self.reward_design = make_reward(self, trainer.cfg.rl, per_sample)
        self.rewards: list[Tensor] = []  # every reward since the last `pop_rewards`, on the device
        self.sample_rewards: Tensor | None = None  # per-sample credit: the last batch's per-action shares
        self.agent_policy: MaskableActorCriticPolicy | None = None  # set by `AuxTaskEnv.attach_policy`
        self.begin_epoch(0)
        self.restore()

    def begin_epoch(self, epoch: int) -> None:
        """Reward batches (and placebo labels) of epoch e are a pure function of (seed, e), as its batches are."""
        self.generator = self.trainer.generator(epoch, STREAM_REWARD)
        self.placebo_generator = self.trainer.generator(epoch, STREAM_PLACEBO)
        self.oracle_generator = self.trainer.generator(epoch, STREAM_ORACLE)
        self.agreement: list[Tensor] = []  # per batch: the chosen labels' agreement with the fine labels
        info = self.trainer.data.info
        self.sampled = LabelStats(info.num_classes, self.trainer.num_aux, self.trainer.device)  # the agent's draws

    def new_copy(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """A copy of the canonical network and a fresh optimiser at the loop's current rate."""
        model = copy.deepcopy(self.trainer.model)
        optimizer, _ = new_optimizer(model, self.cfg)
        for group in optimizer.param_groups:
            group["lr"] = self.trainer.optimizer.param_groups[0]["lr"]
        return model, optimizer

    def restore(self) -> None:
        self.model, self.optimizer = self.new_copy()

    def step(self, batch: Batch, actions: Tensor) -> Tensor:
        """The reward (a 0-d tensor on the device) of the agent's `actions` on `batch`; the copy has trained on them
        unless the design says otherwise (`sample_rewards`: the per-action shares when asked for)."""
        targets = self.codec.targets(actions, batch.y)
        self.sampled.add(batch.y, targets, None)
        human, labels, hits = self.trainer.data.train.aux, targets.labels(), None
        if human is not None and labels is not None:
            hits = (labels == human[batch.index]).float()
            self.agreement.append(hits.mean())
        reward, self.sample_rewards = self.reward_design(batch, targets, hits)
        self.rewards.append(reward)
        return reward

    def pop_agreement(self) -> float:
        """The mean agreement of the labels sampled since the last call with the human fine labels (NaN without)."""
        agreement, self.agreement = self.agreement, []
        return torch.stack(agreement).mean().item() if agreement else float("nan")

    def pop_rewards(self) -> list[float]:
        """Every reward since the last call, read from the device at once."""
        rewards, self.rewards = self.rewards, []
        return torch.stack(rewards).tolist() if rewards else []

    def reward(self, targets: AuxTargets) -> Tensor:
        """The copy's reward on the epoch's next reward batch, after training on `targets`."""
        return self.reward_of(self.model, *self.reward_batch(self.generator), targets)

    def reward_batch(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """`rl.reward_batch` fresh training images (augmented) and their labels."""
        train = self.trainer.data.train
        idx = torch.randint(len(train), (self.cfg.rl.reward_batch,), generator=generator, device=train.y.device)
        return self.trainer.augment(train.x[idx], generator), train.y[idx]

    def eval_loss(self, model: Callable[..., Any], x: Tensor, y: Tensor) -> Tensor:
        """The reward's loss: `model`'s primary loss on (x, y), focal (errata.softmax_reward: the authors'
        cross-entropy on softmax outputs), BatchNorm in training mode on the batch's statistics."""
        if isinstance(model, torch.nn.Module):
            model.train()
        with self.trainer.autocast():
            logits = model(x)[0].float()
        if self.cfg.errata.softmax_reward:
            return F.cross_entropy(logits.softmax(1), y)
        return focal_loss(logits, y, self.cfg.focal_gamma).mean()

    @torch.no_grad()
    def reward_of(
        self, model: torch.nn.Module, x: Tensor, y: Tensor, targets: AuxTargets, bonus: Tensor | None = None
    ) -> Tensor:
        """-primary loss of `model` on (x, y) + entropy bonus (docs/method.md §5, §6.11-6.12); `bonus`: its
        precomputed value.

        The loss is the training loss, focal (errata.softmax_reward: the authors' cross-entropy
        on softmax outputs). The bonus is H of the policy's mean label distribution over the
        same images (errata.target_entropy_reward: over the labelled batch's targets).
        BatchNorm runs in training mode, on the reward batch's statistics, as the training
        loss sees the network (and as the authors' code did).
        """
        loss = self.eval_loss(model, x, y)
        return -loss + self.cfg.rl.entropy_weight * (self.entropy_bonus(x, y, targets) if bonus is None else bonus)

    @torch.no_grad()
    def entropy_bonus(self, x: Tensor, y: Tensor, targets: AuxTargets | None = None) -> Tensor:
        """H(p_bar) of the policy's mean label distribution on (x, y) (paper), or of the labelled batch's
        `targets`: with erratum 11, and for an agent that attached no policy, so that any agent can step
        the env (the authors' own route). `entropy_term` names the route the last reward took."""
        policy = None if self.cfg.errata.target_entropy_reward else self.agent_policy
        self.entropy_term = "chosen-labels" if policy is None else "policy"
        if policy is None:
            if targets is None:
                raise ValueError("the chosen-labels entropy term needs the batch's targets; pass `targets`")
            target = targets.target
            assert target is not None  # RL-AUX always has an auxiliary target
            probs = F.one_hot(target, self.codec.num_aux).float() if target.dtype == torch.long else target
        else:
            policy.set_training_mode(False)  # as in rollouts: BatchNorm on running statistics
            probs = self.codec.label_probs(label_probs(policy, x, self.codec.action_masks(y)), y)
        return batch_entropy(probs)


class Reward:
    """One reward design: `(batch, the agent's targets, their hits on the human task or None)` -> (the batch's
    0-d reward, its (B,) per-action shares when built with `per_sample`, else None)."""

    def __init__(self, sandbox: Sandbox, per_sample: bool) -> None:
        self.sandbox, self.per_sample = sandbox, per_sample

    def __call__(self, batch: Batch, targets: AuxTargets, hits: Tensor | None) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError


class PaperReward(Reward):
    """The paper's: the copy's -loss on a fresh reward batch after one step on the labels, + the entropy bonus."""

    paired = False

    def __call__(self, batch: Batch, targets: AuxTargets, hits: Tensor | None) -> tuple[Tensor, Tensor | None]:
        box, rl, n = self.sandbox, self.sandbox.cfg.rl, len(batch.y)
        x, y = box.reward_batch(box.generator)
        before = box.reward_of(box.model, x, y, targets, bonus=torch.zeros(())) if self.paired else 0
        bonus, shares = None, None
        if self.per_sample:  # each action's first-order share of the step's loss change, + its share of the bonus
            bonus = box.entropy_bonus(x, y, targets)
            influence = first_order_influence(
                box.model,
                box.optimizer.param_groups[0]["lr"],
                lambda forward: box.eval_loss(forward, x, y),
                lambda forward: sample_losses(forward(batch.x), batch.y, targets, box.cfg),
            )
            shares = influence + rl.entropy_weight * bonus / n
        box.trainer.train_step(box.model, box.optimizer, batch, targets)
        after = box.reward_of(box.model, x, y, targets, bonus=bonus)
        return after - before, shares


class PairedReward(PaperReward):
    """rl.reward_pairing: the copy's loss on the reward batch before its step minus after it, + the bonus; the
    reward batch's own difficulty cancels, so what is left is what the labels did."""

    paired = True


class OracleReward(Reward):
    """A control, rl.reward oracle: the labels' agreement with the human task plus `rl.oracle_noise` Gaussian
    noise, no copy trained: can this agent learn from a reward that is the answer?"""

    def __call__(self, batch: Batch, targets: AuxTargets, hits: Tensor | None) -> tuple[Tensor, Tensor | None]:
        assert hits is not None  # the config allows the oracle only on datasets with a human task
        generator, sigma, n = self.sandbox.oracle_generator, self.sandbox.cfg.rl.oracle_noise, len(batch.y)
        if self.per_sample:  # each action its own agreement; the noise split so the batch's sum keeps σ
            noise = torch.randn(n, generator=generator, device=generator.device)
            shares = (hits + sigma * n**0.5 * noise) / n
            return shares.sum(), shares
        noise = torch.randn((), generator=generator, device=generator.device)
        return hits.mean() + sigma * noise, None


class Placebo(Reward):
    """A control, rl.placebo: the wrapped reward with the copy trained on labels drawn uniformly from the allowed
    ones, so the reward carries no information about what the agent chose (PPO, masks and labels unchanged)."""

    def __init__(self, inner: Reward) -> None:
        super().__init__(inner.sandbox, inner.per_sample)
        self.inner = inner

    def __call__(self, batch: Batch, targets: AuxTargets, hits: Tensor | None) -> tuple[Tensor, Tensor | None]:
        codec = self.sandbox.codec
        uniform = codec.targets(codec.uniform_actions(batch.y, self.sandbox.placebo_generator), batch.y)
        return self.inner(batch, uniform, hits)


REWARDS: dict[str, type[Reward]] = {"paper": PaperReward, "oracle": OracleReward}


def make_reward(sandbox: Sandbox, rl: RLConfig, per_sample: bool) -> Reward:
    """The run's reward design from `rl.reward`, `rl.reward_pairing` and `rl.placebo` (validated by the config)."""
    design = PairedReward if rl.reward_pairing else REWARDS[rl.reward]
    reward = design(sandbox, per_sample)
    return Placebo(reward) if rl.placebo else reward


def first_order_influence(
    model: torch.nn.Module,
    lr: float,
    eval_loss: Callable[[Callable[..., Any]], Tensor],
    train_losses: Callable[[Callable[..., Any]], Tensor],
) -> Tensor:
    """Per-sample credit's estimator: each training sample's first-order influence on an evaluation loss through
    one plain SGD step of `model`, lr/B <grad L_eval(θ), grad loss_i(θ)>, (B,).

    `eval_loss(forward)` is the evaluation loss and `train_losses(forward)` the B per-sample losses whose mean the
    step descends (`rlaux.trainer.sample_losses`), each computed through `forward` (the model, or the model at
    other weights). The step is θ - lr grad mean(loss_i), so the B influences add up to
    L_eval(θ) - L_eval(θ_after) up to O(lr²). One backward pass gives grad L_eval, one forward-mode pass
    (`torch.func.jvp`) all B directional derivatives at once. BatchNorm uses each batch's own statistics, as the
    step does, without moving the running statistics."""
    names, params = zip(*model.named_parameters(), strict=True)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    tracking = [m.track_running_stats for m in norms]
    for m in norms:
        m.track_running_stats = False  # in training mode: batch statistics, running ones left alone
    try:
        grads = torch.autograd.grad(eval_loss(model), params, allow_unused=True)
        direction = {n: torch.zeros_like(p) if g is None else g for n, p, g in zip(names, params, grads, strict=True)}
        primal = {n: p.detach() for n, p in zip(names, params, strict=True)}
        dots = jvp(lambda weights: train_losses(partial(functional_call, model, weights)), (primal,), (direction,))[1]
    finally:
        for m, track in zip(norms, tracking, strict=True):
            m.track_running_stats = track
    return lr * dots.detach() / len(dots)
