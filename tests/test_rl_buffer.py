"""The device rollout buffer is sb3-contrib's MaskableRolloutBuffer, bit for bit, without host copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer

from rlaux.methods.rl.buffer import DeviceRolloutBuffer

STEPS = 12


def _rollout(seed: int, space: spaces.Space, mask_dims: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    actions = np.stack([space.sample() for _ in range(STEPS)]).reshape(STEPS, -1)
    starts = (rng.random(STEPS) < 0.3).astype(np.float32)
    return {
        "obs": rng.normal(size=(STEPS, 3, 4, 4)).astype(np.float32),
        "actions": actions,
        "rewards": np.where(rng.random(STEPS) < 0.4, rng.normal(size=STEPS), 0.0).astype(np.float32),
        "starts": starts,
        "values": rng.normal(size=STEPS).astype(np.float32),
        "log_probs": -rng.random(STEPS).astype(np.float32),
        "masks": (rng.random((STEPS, mask_dims)) < 0.7).astype(np.float32),
    }


@pytest.mark.parametrize("space", [spaces.Discrete(6), spaces.MultiDiscrete([6, 3])], ids=["rl", "wa-rl"])
@pytest.mark.parametrize("done", [True, False])
def test_device_buffer_matches_sb3_buffer_bit_for_bit(space, done):
    obs_space = spaces.Box(-5, 5, (3, 4, 4), np.float32)
    sb3 = MaskableRolloutBuffer(STEPS, obs_space, space, "cpu", gae_lambda=0.95, gamma=0.99)
    ours = DeviceRolloutBuffer(STEPS, obs_space, space, "cpu", gae_lambda=0.95, gamma=0.99)
    r = _rollout(0, space, ours.mask_dims)
    for t in range(STEPS):  # SB3's way: one step at a time, numpy in
        sb3.add(
            r["obs"][t : t + 1],
            r["actions"][t],
            r["rewards"][t : t + 1],
            r["starts"][t : t + 1],
            torch.tensor(r["values"][t : t + 1]).reshape(1, 1),
            torch.tensor(r["log_probs"][t : t + 1]),
            action_masks=r["masks"][t : t + 1],
        )
    for lo, hi in ((0, 5), (5, 6), (6, STEPS)):  # ours: blocks of steps, tensors in
        ours.add(
            *(torch.tensor(r[k][lo:hi]) for k in ("obs", "actions", "rewards", "starts", "values", "log_probs")),
            action_masks=torch.tensor(r["masks"][lo:hi]),
        )
    assert ours.full and ours.pos == STEPS
    last = torch.tensor([[0.37]])
    sb3.compute_returns_and_advantage(last, np.array([done]))
    ours.compute_returns_and_advantage(last, torch.tensor([float(done)]))
    assert np.array_equal(ours.advantages.numpy(), sb3.advantages.ravel())
    assert np.array_equal(ours.returns, sb3.returns.ravel()) and np.array_equal(ours.values, sb3.values.ravel())

    np.random.seed(7)
    theirs = [tuple(t.clone() for t in s) for _ in range(2) for s in sb3.get(5)]
    np.random.seed(7)
    mine = [s for _ in range(2) for s in ours.get(5)]
    assert len(mine) == len(theirs) == 6  # 12 steps in minibatches of 5, 5, 2; twice (two PPO epochs)
    for a, b in zip(mine, theirs, strict=True):
        for field, x, y in zip(a._fields, a, b, strict=True):  # same minibatches, same values, same order
            assert torch.equal(x, y.reshape(x.shape).to(x.dtype)), field


def test_device_buffer_takes_numpy_steps_as_the_env_loop_writes_them():
    space = spaces.Discrete(4)
    buf = DeviceRolloutBuffer(2, spaces.Box(0, 1, (2,), np.float32), space, "cpu")
    for t in range(2):
        buf.add(
            np.full((1, 2), t, np.float32),
            np.array([t]),
            np.array([1.0]),
            np.array([t == 0]),
            torch.tensor([[0.5]]),
            torch.tensor([-1.0]),
            action_masks=np.ones((1, 4)),
        )
    assert buf.full and buf.actions.dtype == torch.long and buf.actions.ravel().tolist() == [0, 1]
    assert buf.episode_starts.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="n_envs=2"):
        DeviceRolloutBuffer(2, spaces.Box(0, 1, (2,), np.float32), space, "cpu", n_envs=2)
