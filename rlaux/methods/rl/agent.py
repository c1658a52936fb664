"""The RL-AUX agent: sb3-contrib's MaskablePPO on a VGG16 image encoder (docs/method.md §5).

MaskablePPO is SB3's PPO with invalid-action masking in rollouts, in the update's
log-probabilities and entropy, and in deterministic actions: the env supplies each image's
primary block as its action mask (`ActionCodec.action_masks`). The policy is sb3-contrib's
`MaskableActorCriticPolicy` with `net_arch=[]`, so its own heads are the paper's: action head
Linear(feature_dim, K [+ bins]) and value head Linear(feature_dim, 1), both built before the
optimiser, so every parameter is trained. The errata switches (docs/method.md §6.1-6.3) rebuild the
authors' agent piece by piece.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.distributions import MaskableDistribution, MaskableMultiCategoricalDistribution
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution

from rlaux.methods.rl.buffer import DeviceRolloutBuffer
from rlaux.methods.rl.ppo import UpdateStats, masked_distribution, ppo_update, read_updates
from rlaux.models import mlp_head, trunk_dim, vgg16_trunk

if TYPE_CHECKING:
    from rlaux.config import TrainConfig

PPO_LOG_KEYS = (
    "policy_gradient_loss",
    "value_loss",
    "entropy_loss",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
)


class VGGFeatures(BaseFeaturesExtractor):
    """VGG16-BN trunk (the main network's, same width) -> `features_dim` features.

    Default: Linear + ReLU, a free embedding as in SB3's NatureCNN. errata.softmax_features
    (docs/method.md §6.3): the authors took a whole VGG16 and used its primary head's softmax output
    (Linear-ReLU-Linear-Softmax), so the features are bounded probabilities.
    """

    def __init__(
        self, observation_space: spaces.Box, features_dim: int = 256, width: float = 1.0, softmax_features: bool = False
    ) -> None:
        super().__init__(observation_space, features_dim)
        dim = trunk_dim(width)
        head = (
            nn.Sequential(mlp_head(dim, features_dim), nn.Softmax(dim=1))
            if softmax_features
            else nn.Sequential(nn.Linear(dim, features_dim), nn.ReLU())
        )
        self.net = nn.Sequential(vgg16_trunk(width), head)

    def forward(self, observations: Tensor) -> Tensor:
        # SB3 hands float32 observations; the trunk's dtype is torch's default (float64 in the results fingerprint)
        return self.net(observations.to(next(self.net.parameters()).dtype))


class BatchMeanValue(nn.Module):
    """errata.scalar_value (docs/method.md §6.2): the authors' value head averaged its output over the
    minibatch, so in a PPO update the critic is one scalar for all samples. Their rollouts
    fed one image at a time, where that mean is the sample's own value; so the mean is taken
    in training mode only, and batched rollouts see what the authors' rollouts saw."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: Tensor) -> Tensor:
        value = self.head(features)
        return value.mean(0, keepdim=True).expand_as(value) if self.training else value


class AuxPolicy(MaskableActorCriticPolicy):
    """`MaskableActorCriticPolicy` plus the authors' head errata.

    :param frozen_heads: docs/method.md §6.1: action and value heads are replaced after SB3 built the
        optimiser, so they are never trained; the replacements keep PyTorch's default init.
    :param scalar_value: docs/method.md §6.2: the value head averages over the minibatch.
    """

    def __init__(
        self,
        *args: Any,
        frozen_heads: bool = False,
        scalar_value: bool = False,
        train_mode_batchnorm: bool = False,
        **kwargs: Any,
    ) -> None:
        self.frozen_heads, self.scalar_value = frozen_heads, scalar_value
        self.train_mode_batchnorm = train_mode_batchnorm
        super().__init__(*args, **kwargs)

    def set_training_mode(self, mode: bool) -> None:
        """SB3 collects rollouts in eval mode and updates in train mode. With BatchNorm that makes the
        update's log-probabilities a different function of the weights than the rollout's, and PPO's
        ratio measures that difference before any gradient step. So BatchNorm stays on its running
        statistics in the update too (`refresh_batchnorm` moves them after each update);
        errata.ppo_train_mode_batchnorm keeps SB3's batch statistics in the update."""
        super().set_training_mode(mode)
        if mode and not self.train_mode_batchnorm:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    @torch.no_grad()
    def refresh_batchnorm(self, observations: Tensor, batch_size: int) -> None:
        """Update BatchNorm's running statistics from a rollout's observations, one forward per minibatch:
        what SB3's train-mode update did as a side effect, done after the update instead of during it."""
        if self.train_mode_batchnorm:
            return  # the train-mode update already moved them
        nn.Module.train(self, True)
        for start in range(0, len(observations), batch_size):
            self.extract_features(observations[start : start + batch_size])
        self.set_training_mode(False)

    def _build(self, lr_schedule: Schedule) -> None:
        self.action_dist = masked_distribution(self.action_space)  # sb3-contrib's, without per-call host copies
        super()._build(lr_schedule)  # heads, orthogonal init, then the optimiser over all parameters
        if self.frozen_heads:
            assert isinstance(self.action_net, nn.Linear) and isinstance(self.value_net, nn.Linear)  # net_arch=[]
            self.action_net = nn.Linear(self.action_net.in_features, self.action_net.out_features)
            self.value_net = nn.Linear(self.value_net.in_features, 1)
        if self.scalar_value:
            self.value_net = BatchMeanValue(self.value_net)  # type: ignore[assignment]  # SB3 types the head Linear

    def labels(self, obs: Tensor, masks: Tensor, deterministic: bool) -> Tensor:
        """Actions for a batch of images: argmax (deterministic) or a draw of the masked policy."""
        return masked_policy(self, obs, masks).get_actions(deterministic=deterministic)


def label_probs(policy: MaskableActorCriticPolicy, obs: Tensor, masks: Tensor) -> Tensor:
    """(B, labels) a masked policy's distribution over the label action (WA-RL: its first part).

    Any sb3-contrib maskable policy will do, so a user's own agent on the env gets the paper's reward."""
    dist = masked_policy(policy, obs, masks)
    categorical = dist.distributions[0] if isinstance(dist, MaskableMultiCategoricalDistribution) else dist.distribution
    return cast(Categorical, categorical).probs


def masked_policy(policy: MaskableActorCriticPolicy, obs: Tensor, masks: Tensor) -> MaskableDistribution:
    """The policy's masked distribution for a batch. sb3-contrib annotates masks as numpy but reads any array with
    `th.as_tensor`, so device tensors stay on the device."""
    return policy.get_distribution(obs, action_masks=masks)  # type: ignore[arg-type]  # see the docstring


@contextmanager
def unvalidated_distributions() -> Iterator[None]:
    """torch.distributions checks every argument of every distribution it builds, each check a
    host synchronisation; the agent's logits and actions are valid by construction."""
    default = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(default)


class AuxPPO(MaskablePPO):
    """sb3-contrib's MaskablePPO with its rollout (`DeviceRolloutBuffer`) and its update (`ppo.ppo_update`,
    MaskablePPO.train's arithmetic) on the device; what each update logged waits there for `pop_log`.
    SB3's logger gets each update's statistics as 0-d device tensors (`float()` reads one)."""

    policy: AuxPolicy
    rollout_buffer: DeviceRolloutBuffer

    def __init__(self, policy: type[AuxPolicy], env: gym.Env, **kwargs: Any) -> None:
        super().__init__(policy, env, rollout_buffer_class=DeviceRolloutBuffer, **kwargs)
        self.set_logger(Logger(folder=None, output_formats=[]))  # values only; no files, no stdout
        self._updates: list[UpdateStats] = []  # on the device until `pop_log`

    def train(self) -> None:
        with unvalidated_distributions():
            stats = ppo_update(self)
        self.policy.refresh_batchnorm(self.rollout_buffer.observations, self.minibatch_size)
        self._updates.append(stats)
        for key, value in stats.means().items():
            self.logger.record(f"train/{key}", value)

    @property
    def minibatch_size(self) -> int:
        """PPO's minibatch size (SB3 types `batch_size` optional; PPO always sets it)."""
        assert self.batch_size is not None
        return self.batch_size

    def pop_log(self) -> dict[str, float]:
        """Means over the updates since the last call, read from the device at once."""
        log: dict[str, list[float]] = defaultdict(list)
        for update in read_updates(self._updates):
            for key in PPO_LOG_KEYS:
                log[f"ppo_{key}"].append(float(update[key]))
            log["policy_entropy"].append(update["policy_entropy"])
        self._updates.clear()
        return {key: float(np.mean(values)) for key, values in log.items()}


def make_agent(env: gym.Env, cfg: TrainConfig, device: torch.device, n_steps: int, normalize_advantage: bool) -> AuxPPO:
    """PPO on `env` with the paper's hyperparameters (docs/method.md §5), seeded from cfg.seed; SB3 defaults
    otherwise. The rollout length and the advantages' normalisation are the credit design's (`method.Credit`)."""
    rl, errata = cfg.rl, cfg.errata
    policy_kwargs = dict(
        net_arch=[],
        features_extractor_class=VGGFeatures,
        features_extractor_kwargs=dict(
            features_dim=rl.feature_dim, width=cfg.width, softmax_features=errata.softmax_features
        ),
        frozen_heads=errata.frozen_heads,
        scalar_value=errata.scalar_value,
        train_mode_batchnorm=errata.ppo_train_mode_batchnorm,
    )
    return AuxPPO(
        AuxPolicy,
        env,
        learning_rate=rl.ppo_lr,
        n_steps=n_steps,
        batch_size=rl.ppo_batch_size,
        n_epochs=rl.n_epochs,
        ent_coef=rl.ent_coef,
        normalize_advantage=normalize_advantage,
        policy_kwargs=policy_kwargs,
        seed=cfg.seed,
        device=device,
    )
