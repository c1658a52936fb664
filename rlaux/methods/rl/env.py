"""The RL-AUX environment: label training images, watch the main network learn (docs/method.md §5).

An observation is one augmented, normalised training image (its primary label is not
observed); an action labels it (`actions.ActionCodec`), and `action_masks()` gives the
image's primary block, for sb3-contrib's MaskablePPO. Every `batch_size` steps the
labelled batch trains a disposable copy of the main network one SGD step (the loop's own
`Trainer.train_step`), and the step's reward is (paper, Eq. 3-4)

    r = -mean focal primary loss on a fresh batch of `rl.reward_batch` training images
        + rl.entropy_weight * H(p_bar),   p_bar = the policy's mean label distribution on them;

every other step has reward 0. One episode is one epoch, replayed in the main epoch's
exact batch order and augmentation (`Trainer.batches`), so the agent is rewarded for
the labels the main epoch will then use.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from functools import partial
from itertools import chain, count
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch.func import functional_call, jvp

from rlaux.batch import AuxTargets, Batch
from rlaux.evaluation import LabelStats
from rlaux.losses import batch_entropy, focal_loss
from rlaux.methods.rl.actions import ActionCodec
from rlaux.methods.rl.agent import label_probs
from rlaux.trainer import new_optimizer, sample_losses

if TYPE_CHECKING:
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    from rlaux.trainer import Trainer

ENV_ID = "rlaux/AuxTask-v0"
STREAM_REWARD = 4  # the reward batches' random stream, independent of the epoch's order and augmentation
STREAM_PLACEBO = 5  # the placebo's uniform labels
STREAM_ORACLE = 7  # the oracle control's noise


class Sandbox:
    """A disposable copy of the main network for the agent to train (train-agent mode).

    The canonical network (`trainer.model`) is never touched: every episode starts from a
    copy of it with a fresh optimiser at the current learning rate, so the agent epoch
    cannot leak into the main network, and the next main epoch starts where the last ended.
    `rl.placebo` trains the copy on labels drawn uniformly from the allowed actions instead of
    the agent's, so the reward carries no information about what the agent chose.
    """

    def __init__(self, trainer: Trainer, codec: ActionCodec) -> None:
        self.trainer, self.codec, self.cfg = trainer, codec, trainer.cfg
        self.rewards: list[torch.Tensor] = []  # every reward since the last `pop_rewards`, on the device
        self.sample_rewards = torch.zeros(0)  # rl.credit sample: the last batch's per-action rewards
        self.agent_policy: MaskableActorCriticPolicy | None = None  # set by `AuxTaskEnv.attach_policy`
        self.begin_epoch(0)
        self.restore()

    def begin_epoch(self, epoch: int) -> None:
        """Reward batches (and placebo labels) of epoch e are a pure function of (seed, e), as its batches are."""
        self._generator = self.trainer.generator(epoch, STREAM_REWARD)
        self._placebo = self.trainer.generator(epoch, STREAM_PLACEBO)
        self._oracle = self.trainer.generator(epoch, STREAM_ORACLE)
        self.agreement: list[torch.Tensor] = []  # per batch: the chosen labels' agreement with the fine labels
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

    def step(self, batch: Batch, actions: torch.Tensor) -> torch.Tensor:
        """Train the copy one SGD step on the labelled batch; returns the reward (a 0-d tensor on the device)."""
        targets = self.codec.targets(actions, batch.y)
        self.sampled.add(batch.y, targets, None)
        human, labels, hits = self.trainer.data.train.aux, targets.labels(), None
        if human is not None and labels is not None:
            hits = (labels == human[batch.index]).float()
            self.agreement.append(hits.mean())
        rl, n = self.cfg.rl, len(batch.y)
        if rl.reward == "oracle":  # a control: the reward is the answer itself, no copy trained
            if rl.credit == "sample":  # each action its own agreement; noise split so the batch's sum keeps σ
                assert hits is not None  # the config allows the oracle only on datasets with a human task
                noise = torch.randn(n, generator=self._oracle, device=self._oracle.device)
                self.sample_rewards = (hits + rl.oracle_noise * n**0.5 * noise) / n
                reward = self.sample_rewards.sum()
            else:
                noise = torch.randn((), generator=self._oracle, device=self._oracle.device)
                reward = self.agreement[-1] + rl.oracle_noise * noise
        else:
            if rl.placebo:
                targets = self.codec.targets(self.codec.uniform_actions(batch.y, self._placebo), batch.y)
            x, y = self.reward_batch(self._generator)
            before = self.reward_of(self.model, x, y, targets, bonus=torch.zeros(())) if rl.reward_pairing else 0
            bonus: torch.Tensor | None = None
            if rl.credit == "sample":  # (the config makes sample credit pair the reward)
                bonus = self.entropy_bonus(x, y, targets)
                influence = first_order_influence(
                    self.model,
                    self.optimizer.param_groups[0]["lr"],
                    lambda forward: self.eval_loss(forward, x, y),
                    lambda forward: sample_losses(forward(batch.x), batch.y, targets, self.cfg),
                )
                self.sample_rewards = influence + rl.entropy_weight * bonus / n
            self.trainer.train_step(self.model, self.optimizer, batch, targets)
            after = self.reward_of(self.model, x, y, targets, bonus=bonus)
            reward = after - before  # paired: loss before - loss after + bonus
        self.rewards.append(reward)
        return reward

    def pop_agreement(self) -> float:
        """The mean agreement of the labels sampled since the last call with the human fine labels (NaN without)."""
        agreement, self.agreement = self.agreement, []
        return torch.stack(agreement).mean().item() if agreement else float("nan")

    def reward(self, targets: AuxTargets) -> torch.Tensor:
        """The copy's reward on the epoch's next reward batch, after training on `targets`."""
        return self.reward_of(self.model, *self.reward_batch(self._generator), targets)

    def reward_batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """`rl.reward_batch` fresh training images (augmented) and their labels."""
        train = self.trainer.data.train
        idx = torch.randint(len(train), (self.cfg.rl.reward_batch,), generator=generator, device=train.y.device)
        return self.trainer.augment(train.x[idx], generator), train.y[idx]

    def eval_loss(self, model: Callable[..., Any], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
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
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: AuxTargets,
        bonus: torch.Tensor | None = None,
    ) -> torch.Tensor:
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
    def entropy_bonus(self, x: torch.Tensor, y: torch.Tensor, targets: AuxTargets | None = None) -> torch.Tensor:
        """H(p_bar) of the policy's mean label distribution on (x, y) (paper), or of the labelled batch's
        `targets`: with erratum 11, and for an agent that attached no policy, so that any agent can step
        the env (the authors' own route). `entropy_term` names the route the last reward took."""
        policy = None if self.cfg.errata.target_entropy_reward else self.policy()
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

    def policy(self) -> MaskableActorCriticPolicy | None:
        """The agent attached with `AuxTaskEnv.attach_policy`; None: the reward uses the chosen labels."""
        return self.agent_policy

    def pop_rewards(self) -> list[float]:
        """Every reward since the last call, read from the device at once."""
        rewards, self.rewards = self.rewards, []
        return torch.stack(rewards).tolist() if rewards else []


def first_order_influence(
    model: torch.nn.Module,
    lr: float,
    eval_loss: Callable[[Callable[..., Any]], torch.Tensor],
    train_losses: Callable[[Callable[..., Any]], torch.Tensor],
) -> torch.Tensor:
    """rl.credit sample's estimator: each training sample's first-order influence on an evaluation loss through
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


class AuxTaskEnv(gym.Env):
    """Gymnasium env `rlaux/AuxTask-v0`: one step labels one training image.

    Constructed from a `Trainer` (its model is the canonical network the episodes copy).
    `reset(options={"epoch": e})` starts at epoch e's batches; a plain `reset()` goes on
    to the next episode (what vectorised envs do on termination); `reset(seed=...)`
    restarts the stream at epoch 0. All randomness (batch order, augmentation, reward
    batches) is a pure function of (cfg.seed, epoch), as in the training loop.

    `rl.reset = "batch"` is the reset ablation (paper A.2): each batch is one episode and
    starts again from the canonical network, the batches still visited in the epoch's
    order. errata.reset_replays_first_batch (docs/method.md §6.8) reproduces the authors' version,
    whose reset re-seeded the loader, so every episode replays the epoch's first batch.
    """

    metadata = {"render_modes": []}  # noqa: RUF012  # gym.Env declares it an instance attribute

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.codec = ActionCodec(trainer.cfg, trainer.data.info.num_classes)
        self.sandbox = Sandbox(trainer, self.codec)
        self.action_space = self.codec.space
        x = trainer.data.train.x[:1]
        low, high = (trainer.augment.normalize(torch.full_like(x, v))[0].cpu().numpy() for v in (0, 255))
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._stream: Iterator[Iterator[Batch]] | None = None
        self._episode: Iterator[Batch] = iter(())
        self._batch: Batch | None = None
        self._actions: list[np.ndarray] = []

    def episodes(self, epoch: int) -> Iterator[Iterator[Batch]]:
        """Agent epoch `epoch` as a sequence of episodes, each an iterator over batches."""
        self.sandbox.begin_epoch(epoch)
        batches = self.trainer.batches(epoch)
        if self.trainer.cfg.rl.reset == "epoch":
            yield batches
        elif self.trainer.cfg.errata.reset_replays_first_batch:
            first = next(batches)
            for _ in range(self.trainer.num_batches()):
                yield iter([first])
        else:
            for batch in batches:
                yield iter([batch])

    def attach_policy(self, policy: MaskableActorCriticPolicy) -> None:
        """The agent whose label distribution the reward's entropy term measures (docs/method.md §6.11)."""
        self.sandbox.agent_policy = policy

    def action_masks(self) -> np.ndarray:
        """The labels allowed for the current image: its primary block (sb3-contrib's MaskablePPO)."""
        assert self._batch is not None, "call reset() before action_masks()"
        i = len(self._actions)
        return self.codec.action_masks(self._batch.y[i : i + 1])[0].cpu().numpy()

    def epoch_steps(self) -> int:
        """Env steps in one agent epoch."""
        cfg, n = self.trainer.cfg, len(self.trainer.data.train)
        if cfg.rl.reset == "batch" and cfg.errata.reset_replays_first_batch:
            return self.trainer.num_batches() * min(n, cfg.batch_size)
        return n

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None or self._stream is None or (options and "epoch" in options):
            start = (options or {}).get("epoch", 0)
            self._stream = chain.from_iterable(self.episodes(e) for e in count(start))
        self._episode = next(self._stream)
        self.sandbox.restore()
        self._batch = next(self._episode)
        self._actions = []
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self._batch is not None, "call reset() before step()"
        self._actions.append(np.asarray(action))
        if len(self._actions) < len(self._batch.y):
            return self._obs(), 0.0, False, False, {}
        actions = torch.as_tensor(np.stack(self._actions), device=self.trainer.device)
        reward = self.sandbox.step(self._batch, actions).item()  # gymnasium's reward is a Python float
        info = {"entropy_term": self.sandbox.entropy_term}  # "policy" (paper) or "chosen-labels" (no policy)
        self._actions = []
        following = next(self._episode, None)
        if following is None:  # episode over; its terminal observation is never acted on
            return self._obs(), reward, True, False, info
        self._batch = following
        return self._obs(), reward, False, False, info

    def _obs(self) -> np.ndarray:
        assert self._batch is not None
        return self._batch.x[len(self._actions)].cpu().numpy().copy()
