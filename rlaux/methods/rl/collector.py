"""One train-agent epoch: collect rollouts into the agent's buffer, learn with its `train` (MaskablePPO's update).

Observations never depend on actions (the next image is the next image of the epoch,
whatever the label), so labelling a whole batch in one policy forward pass gives the same
rollout distribution as one image per env step (docs/method.md §8). `BatchedCollector` does that;
`EnvCollector` runs the literal env loop (`MaskablePPO.learn`) for comparison.

Both run the same number of steps per agent epoch, a whole number of rollouts
(`rollout_budget`): when `n_steps` does not divide the epoch (79 on CIFAR-100-20), the
last partial rollout is never collected, as `PPO.learn(total_timesteps=budget)` would.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from rlaux.methods.rl.agent import AuxPPO
from rlaux.methods.rl.env import AuxTaskEnv


def rollout_budget(agent: AuxPPO, env: AuxTaskEnv) -> int:
    """Env steps one agent epoch collects: its steps, rounded down to whole rollouts."""
    return env.epoch_steps() // agent.n_steps * agent.n_steps


class Collector(Protocol):
    def run(self, epoch: int) -> None:
        """Run the train-agent epoch `epoch`; PPO learns after every full rollout."""


class EnvCollector:
    """The literal loop: `PPO.learn` on the env, one image per step."""

    def __init__(self, agent: AuxPPO, env: AuxTaskEnv) -> None:
        self.agent, self.env = agent, env

    def run(self, epoch: int) -> None:
        env = self.agent.get_env()
        assert env is not None  # the agent was built on the env
        env.set_options({"epoch": epoch})  # used by learn()'s first reset only
        budget = rollout_budget(self.agent, self.env)
        self.agent.learn(total_timesteps=budget, log_interval=None)  # type: ignore[arg-type]  # None: never dump


class BatchedCollector:
    """One policy forward pass per batch; transitions written as `collect_rollouts` writes them.

    A batch's steps go into the agent's `DeviceRolloutBuffer` in one write, never leaving the
    device. Rewards are 0 except on a batch's last step, each step's action mask is written
    beside it (as MaskablePPO's `collect_rollouts` does), `episode_start` marks each episode's
    first step, and the rollout's last value bootstraps from the next observation unless
    the episode ended there. A batch that straddles a rollout boundary is split at it: PPO
    learns before the rest of the batch is labelled, by the updated policy, as in the env loop.
    """

    def __init__(self, agent: AuxPPO, env: AuxTaskEnv) -> None:
        self.agent, self.env = agent, env
        self.policy, self.buffer = agent.policy, agent.rollout_buffer
        self.credit = env.trainer.cfg.rl.credit

    def run(self, epoch: int) -> None:
        self.buffer.reset()
        steps_left = rollout_budget(self.agent, self.env)
        for episode in self.env.episodes(epoch):
            if steps_left == 0:
                return
            self.env.sandbox.restore()
            episode_start = True
            for batch in episode:
                chosen: list[Tensor] = []
                start = 0
                while start < len(batch.y):
                    if self.buffer.full:
                        self._learn(next_obs=batch.x[start : start + 1])
                    if steps_left == 0:
                        return
                    stop = min(len(batch.y), start + self.buffer.buffer_size - self.buffer.pos, start + steps_left)
                    obs, masks = batch.x[start:stop], self.env.codec.action_masks(batch.y[start:stop])
                    self.policy.set_training_mode(False)
                    with torch.no_grad():
                        actions, values, log_probs = self.policy(obs, action_masks=masks)
                    chosen.append(actions)
                    rewards = torch.zeros(stop - start, device=obs.device)
                    if stop == len(batch.y):
                        rewards[-1] = self.env.sandbox.step(batch, torch.cat(chosen))
                    starts = torch.zeros(stop - start, device=obs.device)
                    starts[0] = float(episode_start)
                    self.buffer.add(obs, actions, rewards, starts, values, log_probs, action_masks=masks)
                    episode_start = False
                    steps_left -= stop - start
                    start = stop
                if self.credit == "batch":  # the rollout is this batch: credit its actions, then PPO
                    self.buffer.assign_batch_credit(rewards[-1])
                elif self.credit == "sample":
                    self.buffer.assign_sample_credit(self.env.sandbox.sample_rewards)
                if self.credit != "paper":
                    self._learn_batch()
            if self.buffer.full:
                self._learn(next_obs=None)

    def _learn_batch(self) -> None:
        """rl.credit batch or sample: PPO on a rollout of exactly one batch whose returns and advantages were
        just assigned (batch: the batch's reward for every action; sample: each action's own reward), no GAE."""
        assert self.buffer.full, f"rl.credit {self.credit!r} needs rollouts of one batch (n_steps = batch_size)"
        self.agent.train()
        self.buffer.reset()

    def _learn(self, next_obs: Tensor | None) -> None:
        """GAE over the full buffer, bootstrapped from `next_obs` (None: the episode ended), then PPO."""
        self.policy.set_training_mode(False)
        device = self.policy.device
        with torch.no_grad():
            last_values = torch.zeros(1, device=device) if next_obs is None else self.policy.predict_values(next_obs)
        dones = torch.full((1,), float(next_obs is None), device=device)
        self.buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        self.agent.train()
        self.buffer.reset()
