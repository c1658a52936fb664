"""sb3-contrib's MaskableRolloutBuffer with its storage and minibatches on the agent's device.

SB3's buffer keeps a rollout in numpy: every stored value is copied to the host, and every
PPO minibatch is copied back to the device (`th.tensor(array, device=...)`), each copy a host
synchronisation. Here the same arrays are tensors on the device. The arithmetic is SB3's, op
for op: GAE in float32, minibatches drawn with `np.random.permutation` (the global numpy
stream SB3 seeds), so a run is bit for bit what it was with SB3's buffer (tested against it).
`add` takes a block of consecutive steps at once (the agent epoch writes a whole
labelled batch), or SB3's one step of numpy arrays (the env loop). One env only.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer, MaskableRolloutBufferSamples
from torch import Tensor


class DeviceRolloutBuffer(MaskableRolloutBuffer):
    """A one-env MaskableRolloutBuffer held in device tensors; same samples, same order."""

    # SB3 annotates its storage as numpy arrays; here every array is a device tensor (the point of this class)
    observations: Tensor  # type: ignore[assignment]
    actions: Tensor  # type: ignore[assignment]
    rewards: Tensor  # type: ignore[assignment]
    episode_starts: Tensor  # type: ignore[assignment]
    log_probs: Tensor  # type: ignore[assignment]
    advantages: Tensor  # type: ignore[assignment]
    action_masks: Tensor  # type: ignore[assignment]
    _values: Tensor
    _returns: Tensor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.n_envs != 1:
            raise ValueError(f"DeviceRolloutBuffer holds one env's rollout, got n_envs={self.n_envs}")

    def reset(self) -> None:
        space = self.action_space
        assert isinstance(space, spaces.Discrete | spaces.MultiDiscrete), f"no action masks for {space}"
        self.mask_dims = int(space.n) if isinstance(space, spaces.Discrete) else int(sum(space.nvec))

        def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros(self.buffer_size, *shape, dtype=dtype, device=self.device)

        self.observations, self.actions = zeros(*self.obs_shape), zeros(self.action_dim, dtype=torch.long)
        self.rewards, self.episode_starts, self.log_probs, self.advantages = zeros(), zeros(), zeros(), zeros()
        self._values, self._returns = zeros(), zeros()
        self.action_masks = torch.ones(self.buffer_size, self.mask_dims, device=self.device)
        self.generator_ready = False
        self.pos, self.full = 0, False

    def assign(self, returns: Tensor, advantages: Tensor) -> None:
        """A rollout's returns and advantages set by a credit design (`method.Credit`) instead of by GAE."""
        self._returns, self.advantages = returns, advantages

    # SB3's numpy view, for readers of the buffer (rlaux's update reads the device tensors).
    @property
    def values(self) -> np.ndarray:  # type: ignore[override]  # SB3's attribute, a read-only view of the device one
        return self._values.cpu().numpy()

    @property
    def returns(self) -> np.ndarray:  # type: ignore[override]  # SB3's attribute, a read-only view of the device one
        return self._returns.cpu().numpy()

    def add(  # type: ignore[override]  # k steps of device tensors at once (SB3's: one step of numpy arrays)
        self,
        obs: Tensor | np.ndarray,
        action: Tensor | np.ndarray,
        reward: Tensor | np.ndarray,
        episode_start: Tensor | np.ndarray,
        value: Tensor,
        log_prob: Tensor,
        action_masks: Tensor | np.ndarray | None = None,
    ) -> None:
        """Store k consecutive steps (k = len(obs)) after the last stored one."""
        k = len(obs)
        steps = slice(self.pos, self.pos + k)
        self.observations[steps] = self._device(obs).reshape(k, *self.obs_shape)
        self.actions[steps] = self._device(action, torch.long).reshape(k, self.action_dim)
        self.rewards[steps] = self._device(reward).reshape(k)
        self.episode_starts[steps] = self._device(episode_start).reshape(k)
        self._values[steps] = value.reshape(k)
        self.log_probs[steps] = log_prob.reshape(k)
        if action_masks is not None:
            self.action_masks[steps] = self._device(action_masks).reshape(k, self.mask_dims)
        self.pos += k
        self.full = self.pos == self.buffer_size

    def compute_returns_and_advantage(self, last_values: Tensor, dones: Tensor | np.ndarray) -> None:
        """SB3's GAE(lambda): the same float32 operations in the same order, on the device, without a sync.

        The TD errors and discounts are elementwise, so they take one pass over the rollout; only the
        recursion A_t = delta_t + gamma * lambda * (1 - done_t+1) * A_t+1 is sequential: two kernels a step
        (a bit-identical scan in fewer kernels does not exist: each step rounds what the next one reads).
        """
        starts, dones = self.episode_starts[1:], self._device(dones).reshape(1)
        next_non_terminal = 1.0 - torch.cat([starts, dones.to(starts.dtype)])
        next_values = torch.cat([self._values[1:], last_values.flatten().to(self._values.dtype)])
        delta = self.rewards + self.gamma * next_values * next_non_terminal
        delta = delta - self._values
        discount = self.gamma * self.gae_lambda * next_non_terminal
        last_gae_lam, scaled = torch.zeros_like(delta[:1]), torch.empty_like(delta[:1])
        for step in reversed(range(self.buffer_size)):
            torch.mul(discount[step : step + 1], last_gae_lam, out=scaled)
            last_gae_lam = torch.add(delta[step : step + 1], scaled, out=self.advantages[step : step + 1])
        self._returns = self.advantages + self._values

    def get(  # type: ignore[override]  # as sb3-contrib's own get: the samples carry their action masks
        self, batch_size: int | None = None
    ) -> Generator[MaskableRolloutBufferSamples, None, None]:
        assert self.full, "the rollout is not complete"
        order = torch.from_numpy(np.random.permutation(self.buffer_size))  # SB3's draw, on the host
        order = (order.pin_memory() if self.device.type == "cuda" else order).to(self.device, non_blocking=True)
        batch_size = batch_size or self.buffer_size
        for start in range(0, self.buffer_size, batch_size):
            idx = order[start : start + batch_size]
            yield MaskableRolloutBufferSamples(
                self.observations[idx],
                self.actions[idx],
                self._values[idx],
                self.log_probs[idx],
                self.advantages[idx],
                self._returns[idx],
                self.action_masks[idx],
            )

    def _device(self, x: Tensor | np.ndarray, dtype: torch.dtype = torch.float32) -> Tensor:
        """Device tensors pass through; SB3's env loop hands in numpy (one step: a host copy by nature)."""
        if isinstance(x, Tensor):
            return x.to(self.device, dtype)
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)
