"""The RL-AUX environment: label training images, watch the main network learn (docs/method.md §5).

An observation is one augmented, normalised training image (its primary label is not
observed); an action labels it (`actions.ActionCodec`), and `action_masks()` gives the
image's primary block, for sb3-contrib's MaskablePPO. Every `batch_size` steps the
labelled batch earns the run's reward (`reward.Sandbox`: by default the paper's, a disposable
copy of the main network trained one SGD step on the labels, then scored); every other step has reward 0. One episode is one epoch, replayed in the main epoch's
exact batch order and augmentation (`Trainer.batches`), so the agent is rewarded for
the labels the main epoch will then use.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, count
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from rlaux.batch import Batch
from rlaux.methods.rl.actions import ActionCodec
from rlaux.methods.rl.reward import Sandbox

if TYPE_CHECKING:
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    from rlaux.trainer import Trainer

ENV_ID = "rlaux/AuxTask-v0"


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

    def __init__(self, trainer: Trainer, per_sample: bool = False) -> None:
        """`per_sample`: each reward also split among its batch's actions (`Sandbox.sample_rewards`)."""
        self.trainer = trainer
        self.codec = ActionCodec(trainer.cfg, trainer.data.info.num_classes)
        self.sandbox = Sandbox(trainer, self.codec, per_sample)
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
