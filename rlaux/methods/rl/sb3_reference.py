"""sb3-contrib's own PPO code on an `AuxPPO`: the reference that tests and benchmarks hold `ppo` against.

`ppo.ppo_update` and `DeviceRolloutBuffer` reproduce MaskablePPO's update and SB3's GAE op for op
without host synchronisations; `use_sb3_contrib` swaps the originals back in, so a test can compare the
two bit for bit and a benchmark can time one against the other in the same run.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.distributions import make_masked_proba_distribution
from stable_baselines3.common.buffers import RolloutBuffer
from torch import Tensor

from rlaux.methods.rl.agent import PPO_LOG_KEYS, AuxPPO, unvalidated_distributions


def use_sb3_contrib(agent: AuxPPO) -> None:
    """The reference, for tests and benchmarks: run `agent` on sb3-contrib's own code, as rlaux did before
    issue 19: `MaskableCategorical`, `MaskablePPO.train` (its logger read after each update) and SB3's numpy
    GAE. Only the rollout's storage stays `DeviceRolloutBuffer`'s (tested against SB3's buffer)."""
    buffer = agent.rollout_buffer
    agent.policy.action_dist = make_masked_proba_distribution(agent.action_space)
    updates: list[dict[str, float]] = []

    def gae(last_values: Tensor, dones: Tensor | np.ndarray) -> None:
        host = SimpleNamespace(buffer_size=buffer.buffer_size, gamma=buffer.gamma, gae_lambda=buffer.gae_lambda)
        host.rewards, host.values, host.episode_starts = (
            t.cpu().numpy()[:, None] for t in (buffer.rewards, buffer._values, buffer.episode_starts)
        )
        host.advantages = np.zeros_like(host.rewards)
        dones = np.asarray(torch.as_tensor(dones).cpu())
        RolloutBuffer.compute_returns_and_advantage(host, last_values, dones)  # type: ignore[arg-type]  # its arrays
        buffer.advantages = torch.from_numpy(host.advantages.ravel()).to(buffer.device)
        buffer._returns = torch.from_numpy(host.returns.ravel()).to(buffer.device)

    def train() -> None:
        entropy = float(-buffer.log_probs.mean())
        with unvalidated_distributions():
            MaskablePPO.train(agent)
        agent.policy.refresh_batchnorm(buffer.observations, agent.minibatch_size)
        logged = {f"ppo_{k}": float(agent.logger.name_to_value[f"train/{k}"]) for k in PPO_LOG_KEYS}
        updates.append(logged | {"policy_entropy": entropy})

    def pop_log() -> dict[str, float]:
        log = {k: float(np.mean([u[k] for u in updates])) for k in (updates[0] if updates else {})}
        updates.clear()
        return log

    buffer.compute_returns_and_advantage = gae  # type: ignore[method-assign]  # the reference swapped in
    agent.train, agent.pop_log = train, pop_log  # type: ignore[method-assign]
