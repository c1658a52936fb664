"""RL-AUX and WA-RL as a plug-in method: a PPO agent labels every training image (docs/method.md §5).

Each epoch of the loop alternates the paper's two modes over the same batch order:

1. train-agent (`before_epoch`, `agent_epoch`): for each of epoch e's batches, in order,
   a. label: the agent draws a label for every image (stochastic actions of the block-masked policy);
   b. train the network: a disposable copy of the main network takes one SGD step on those labels;
   c. reward: the copy is scored on fresh images (`reward.Sandbox`, the run's `Reward` design);
   d. credit: the batch's reward reaches its actions (`Credit`: the paper's GAE, batch or per-sample);
   e. PPO update, whenever a rollout is complete.
   The copy is then discarded: the canonical network is never touched.
2. train-main (the loop's own epoch): `targets` returns the agent's deterministic labels
   (argmax of the block-masked policy) for each batch; the loop trains the main network
   and steps the scheduler, and the result is the new canonical network.

`wa-rl` is the same class with a per-sample weight bin in each action. The controls are reward designs
(`rl.placebo`, `rl.reward oracle`: `reward.py`), `rl.train_agent false` (never trained: the authors'
"Randomized Task", labels from the initial policy) and `rl.diagnostics` (what the agent learned each
epoch: `diagnostics.AgentProbe`).

Labelling a whole batch in one policy forward pass gives the same rollout distribution as one image
per env step, since observations never depend on actions (docs/method.md §8); `rl.collector env` runs
the literal env loop (`MaskablePPO.learn`) instead, for comparison. Both run the same number of steps
per agent epoch, a whole number of rollouts (`rollout_budget`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from rlaux.batch import AuxTargets, Batch
from rlaux.methods.base import AuxMethod, EpochStats, MethodContext
from rlaux.methods.rl.agent import make_agent, unvalidated_distributions
from rlaux.methods.rl.diagnostics import AgentProbe
from rlaux.methods.rl.env import AuxTaskEnv

if TYPE_CHECKING:
    from rlaux.config import TrainConfig
    from rlaux.methods.rl.buffer import DeviceRolloutBuffer


class Credit:
    """How a batch's one reward reaches its actions. Non-paper designs align PPO's rollouts to the batches
    (n_steps = batch_size) and set each rollout's returns and advantages themselves, instead of GAE."""

    per_sample: ClassVar[bool] = False  # does it need the reward split among the batch's actions?
    normalize_advantage: ClassVar[bool] = True  # PPO's per-minibatch normalisation of the advantages

    def n_steps(self, cfg: TrainConfig) -> int:
        return cfg.batch_size

    def assign(self, buffer: DeviceRolloutBuffer, reward: Tensor, shares: Tensor | None) -> bool:
        """Credit a batch's actions, just written to `buffer`, with its `reward` (0-d) or `shares` (B,);
        True: the rollout is ready for PPO now."""
        raise NotImplementedError


class PaperCredit(Credit):
    """The paper's: the reward sits on the batch's last action and GAE spreads it back over rollouts of
    `rl.n_steps` (79 on CIFAR-100-20, 100 elsewhere) that need not align with the batches."""

    def n_steps(self, cfg: TrainConfig) -> int:
        return cfg.rl.n_steps or (79 if cfg.dataset == "cifar100-20" else 100)

    def assign(self, buffer: DeviceRolloutBuffer, reward: Tensor, shares: Tensor | None) -> bool:
        return False  # GAE credits the rollout once it is full


class BatchCredit(Credit):
    """Every action of a batch gets the batch's reward as its return, and the reward minus the critic's mean
    value over the batch (a baseline across batches) as its advantage, not normalised (that would delete the
    batch's one signal)."""

    normalize_advantage = False

    def assign(self, buffer: DeviceRolloutBuffer, reward: Tensor, shares: Tensor | None) -> bool:
        returns = reward.expand(buffer.buffer_size).clone()
        buffer.assign(returns, returns - buffer._values.mean())
        return True


class SampleCredit(Credit):
    """Each action its own share of the reward (`Reward` with `per_sample`), the shares adding up to the batch's
    reward (to first order); the advantage is the share minus the batch's mean share. Not the critic's value:
    a share is 1/B of a batch's reward, far below an untrained critic's noise (explained variance near -100 in
    the oracle's first sample-credit runs), which then drowned the signal."""

    per_sample = True

    def assign(self, buffer: DeviceRolloutBuffer, reward: Tensor, shares: Tensor | None) -> bool:
        assert shares is not None  # the reward was built with per_sample
        returns = shares.reshape(buffer.buffer_size).to(buffer._values.dtype).clone()
        buffer.assign(returns, returns - returns.mean())
        return True


CREDITS: dict[str, type[Credit]] = {"paper": PaperCredit, "batch": BatchCredit, "sample": SampleCredit}


class RLAux(AuxMethod):
    """RL-AUX (cfg.method "rl") and WA-RL ("wa-rl"); history columns are prefixed "rl/"."""

    def __init__(self, ctx: MethodContext) -> None:
        super().__init__(ctx)
        self.credit = CREDITS[self.cfg.rl.credit]()
        self.env = AuxTaskEnv(ctx.trainer, per_sample=self.credit.per_sample)
        self.codec, self.sandbox = self.env.codec, self.env.sandbox
        self.agent = make_agent(
            self.env,
            ctx.cfg,
            ctx.device,
            n_steps=self.credit.n_steps(self.cfg),
            normalize_advantage=self.credit.normalize_advantage,
        )
        self.policy, self.buffer = self.agent.policy, self.agent.rollout_buffer
        self.env.attach_policy(self.policy)
        if self.rollout_budget() < min(self.cfg.batch_size, len(ctx.train)):
            raise ValueError(
                f"an agent epoch collects {self.rollout_budget()} of its {self.env.epoch_steps()} steps (whole PPO "
                f"rollouts of rl.n_steps={self.agent.n_steps}), less than one batch, so the agent would never see "
                f"a reward; raise train_size or lower rl.n_steps"
            )
        self.probe = AgentProbe(self.env, self.policy) if self.cfg.rl.diagnostics else None
        self.weights = EpochStats()

    def rollout_budget(self) -> int:
        """Env steps one agent epoch collects: its steps, rounded down to whole rollouts (the last partial
        rollout is never collected, as `PPO.learn(total_timesteps=budget)` would not)."""
        return self.env.epoch_steps() // self.agent.n_steps * self.agent.n_steps

    # ------------------------------------------------------------------ train-agent epoch
    def before_epoch(self, epoch: int) -> dict[str, float]:
        with unvalidated_distributions():
            if not self.cfg.rl.train_agent:  # the untrained-agent control: labels from the initial policy
                return self.probe.measure(epoch) if self.probe is not None else {}
            self.train_agent(epoch)
        rewards = self.sandbox.pop_rewards()
        log = {"reward_mean": sum(rewards) / len(rewards)} | self.agent.pop_log()
        if self.ctx.train.aux is not None:  # sampled labels against the human fine labels (CIFAR-100-20)
            log["fine_agreement"] = self.sandbox.pop_agreement()
        with unvalidated_distributions():
            diagnostics = self.probe.measure(epoch) if self.probe is not None else {}
        return {f"rl/{key}": value for key, value in log.items()} | diagnostics

    def train_agent(self, epoch: int) -> None:
        """Train-agent epoch `epoch`, batched (`agent_epoch`) or through the env loop (`env_loop`)."""
        if self.cfg.rl.collector == "env":
            self.env_loop(epoch)
        else:
            self.agent_epoch(epoch)

    def agent_epoch(self, epoch: int) -> None:
        """Train-agent epoch `epoch`: label each batch, train the copy on it and reward it, credit, PPO.

        A batch's steps go into the agent's `DeviceRolloutBuffer` in one write, as MaskablePPO's
        `collect_rollouts` would write them: rewards 0 except on the batch's last step, each step's action
        mask beside it, `episode_start` on each episode's first step. A batch that straddles a rollout
        boundary is split at it: PPO learns before the rest of the batch is labelled, by the updated
        policy, as in the env loop.
        """
        self.buffer.reset()
        steps_left = self.rollout_budget()
        for episode in self.env.episodes(epoch):
            if steps_left == 0:
                return
            self.sandbox.restore()
            episode_start = True
            for batch in episode:
                chosen: list[Tensor] = []
                start = 0
                while start < len(batch.y):
                    if self.buffer.full:
                        self.ppo_update(next_obs=batch.x[start : start + 1])
                    if steps_left == 0:
                        return
                    stop = min(len(batch.y), start + self.buffer.buffer_size - self.buffer.pos, start + steps_left)
                    # a. label: one forward pass of the masked policy over the batch (its part in this rollout)
                    obs, masks = batch.x[start:stop], self.codec.action_masks(batch.y[start:stop])
                    self.policy.set_training_mode(False)
                    with torch.no_grad():
                        actions, values, log_probs = self.policy(obs, action_masks=masks)
                    chosen.append(actions)
                    rewards = torch.zeros(stop - start, device=obs.device)
                    if stop == len(batch.y):  # b, c. the batch is labelled: train the copy on it, reward it
                        rewards[-1] = self.sandbox.step(batch, torch.cat(chosen))
                    starts = torch.zeros(stop - start, device=obs.device)
                    starts[0] = float(episode_start)
                    self.buffer.add(obs, actions, rewards, starts, values, log_probs, action_masks=masks)
                    episode_start = False
                    steps_left -= stop - start
                    start = stop
                # d. credit; e. PPO on a rollout of this one batch, when the credit design aligns them
                if self.credit.assign(self.buffer, rewards[-1], self.sandbox.sample_rewards):
                    self.ppo_update(next_obs=None, gae=False)
            if self.buffer.full:
                self.ppo_update(next_obs=None)

    def ppo_update(self, next_obs: Tensor | None, gae: bool = True) -> None:
        """MaskablePPO's update on the full rollout, after GAE bootstrapped from `next_obs` (None: the episode
        ended) unless a credit design has set the returns and advantages (`gae` False)."""
        assert self.buffer.full, (
            "PPO learns on whole rollouts (rl.credit batch, sample: of one batch, n_steps = batch_size)"
        )
        if gae:
            self.policy.set_training_mode(False)
            device = self.policy.device
            with torch.no_grad():
                last_values = (
                    torch.zeros(1, device=device) if next_obs is None else self.policy.predict_values(next_obs)
                )
            dones = torch.full((1,), float(next_obs is None), device=device)
            self.buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        self.agent.train()
        self.buffer.reset()

    def env_loop(self, epoch: int) -> None:
        """rl.collector env: the literal loop, `PPO.learn` on the env, one image per step."""
        env = self.agent.get_env()
        assert env is not None  # the agent was built on the env
        env.set_options({"epoch": epoch})  # used by learn()'s first reset only
        self.agent.learn(total_timesteps=self.rollout_budget(), log_interval=None)  # type: ignore[arg-type]  # None: never dump

    # ------------------------------------------------------------------ train-main epoch
    def targets(self, batch: Batch) -> AuxTargets:
        """The masked policy's most likely action per image (BatchNorm in eval mode, as in rollouts)."""
        self.policy.set_training_mode(False)
        with torch.no_grad(), unvalidated_distributions():
            actions = self.policy.labels(batch.x, self.codec.action_masks(batch.y), deterministic=True)
        _, w = self.codec.split(actions)
        if w is not None:
            self.weights.add("rl/weight", w, std=True)
        return self.codec.targets(actions, batch.y)

    def after_epoch(self, epoch: int) -> dict[str, float]:
        """WA-RL: mean and std of the main epoch's weights w in [0, 1] (label statistics: the loop's `labels/`)."""
        return self.weights.read()

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.policy.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.policy.optimizer.load_state_dict(state["optimizer"])
