"""sb3-contrib's MaskablePPO update and masked distributions, op for op, without host synchronisations.

`MaskablePPO.train` reads four statistics per minibatch with `.item()` and the KL with `.cpu()`, and
`MaskableCategorical` copies `th.tensor(-1e8)` and `th.tensor(0.0)` to the device on every call; on a GPU
each is a stall. Here the masks fill with Python scalars (`torch.where`), the statistics stay
on the device until `read_updates` (once per epoch), and every value that reaches the policy or the
log is computed by the same floating-point operations as sb3-contrib 2.9's (tested bit for bit on a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from sb3_contrib.common.maskable.distributions import (
    MaskableCategorical,
    MaskableCategoricalDistribution,
    MaskableDistribution,
    MaskableMultiCategoricalDistribution,
    MaybeMasks,
)
from stable_baselines3.common.utils import explained_variance
from torch import Tensor
from torch.distributions import Categorical

if TYPE_CHECKING:
    from sb3_contrib import MaskablePPO

    from rlaux.methods.rl.buffer import DeviceRolloutBuffer

HUGE_NEG = -1e8  # sb3-contrib's logit for a masked action (exact in float32)


class MaskedCategorical(MaskableCategorical):
    """`MaskableCategorical` with Python-scalar fills: the same values, no scalar tensor per call."""

    def apply_masking(self, masks: MaybeMasks) -> None:
        if masks is None:
            return super().apply_masking(None)
        self.masks = torch.as_tensor(masks, dtype=torch.bool, device=self.logits.device).reshape(self.logits.shape)
        logits = torch.where(self.masks, self._original_logits, HUGE_NEG)
        self.__dict__.pop("probs", None)
        Categorical.__init__(self, logits=logits, validate_args=self._validate_args)

    def entropy(self) -> Tensor:
        """Masked actions carry no uncertainty: their p log p terms are zeroed, as in sb3-contrib."""
        if self.masks is None:
            return super().entropy()
        return -torch.where(self.masks, self.logits * self.probs, 0.0).sum(-1)


class MaskedCategoricalDistribution(MaskableCategoricalDistribution):
    def proba_distribution(self, action_logits: Tensor) -> MaskedCategoricalDistribution:
        self.distribution = MaskedCategorical(logits=action_logits.view(-1, self.action_dim))
        return self


class MaskedMultiCategoricalDistribution(MaskableMultiCategoricalDistribution):
    def proba_distribution(self, action_logits: Tensor) -> MaskedMultiCategoricalDistribution:
        logits = action_logits.view(-1, sum(self.action_dims))
        self.distributions = [MaskedCategorical(logits=part) for part in torch.split(logits, list(self.action_dims), 1)]
        return self


def masked_distribution(space: spaces.Space) -> MaskableDistribution:
    """sb3-contrib's `make_masked_proba_distribution` for rlaux's action spaces, with the classes above."""
    if isinstance(space, spaces.Discrete):
        return MaskedCategoricalDistribution(int(space.n))
    if isinstance(space, spaces.MultiDiscrete):
        return MaskedMultiCategoricalDistribution(list(space.nvec))
    raise NotImplementedError(f"rlaux's agent acts in Discrete or MultiDiscrete spaces, got {space}")


MINIBATCH_STATS = ("policy_gradient_loss", "value_loss", "entropy_loss", "clip_fraction")


@dataclass
class UpdateStats:
    """One update's statistics, on the device: `MINIBATCH_STATS` per minibatch (4, m), the KL per minibatch
    of the last pass (SB3 logs that pass's only), the rollout's values and returns (2, n), and the entropy
    of the policy that collected it, estimated as E[-log pi(a|s)] (1,)."""

    minibatches: Tensor
    approx_kl: Tensor
    values_returns: Tensor
    policy_entropy: Tensor

    def means(self) -> dict[str, Tensor]:
        """Device means for SB3's logger (0-d tensors); the history gets SB3's own from `read_updates`."""
        values, returns = self.values_returns.double()
        var = returns.var(unbiased=False)
        explained = torch.where(var == 0, torch.nan, 1 - (returns - values).var(unbiased=False) / var)
        means = self.minibatches.double().mean(1)
        return dict(zip(MINIBATCH_STATS, means, strict=True)) | {
            "approx_kl": self.approx_kl.double().mean(),
            "explained_variance": explained,
        }


def ppo_update(agent: MaskablePPO) -> UpdateStats:
    """`MaskablePPO.train`'s arithmetic, on the same minibatches in the same order (sb3-contrib 2.9.2).

    Only `target_kl` (unset in rlaux) reads the KL on the host, once per minibatch, as its early stop must.
    """
    policy, buffer = agent.policy, cast("DeviceRolloutBuffer", agent.rollout_buffer)  # AuxPPO's
    policy_entropy = -buffer.log_probs.mean()
    policy.set_training_mode(True)
    agent._update_learning_rate(policy.optimizer)
    progress = agent._current_progress_remaining
    clip_schedule, clip_vf_schedule = agent.clip_range, agent.clip_range_vf
    assert callable(clip_schedule) and (clip_vf_schedule is None or callable(clip_vf_schedule))  # since _setup_model
    clip_range = clip_schedule(progress)
    clip_range_vf = None if clip_vf_schedule is None else clip_vf_schedule(progress)
    stats: list[Tensor] = []  # MINIBATCH_STATS of each minibatch
    kls: list[Tensor] = []
    continue_training = True
    for epoch in range(agent.n_epochs):
        kls = []
        for data in buffer.get(agent.batch_size):
            actions = data.actions
            if isinstance(agent.action_space, spaces.Discrete):
                actions = data.actions.long().flatten()
            values, log_prob, entropy = policy.evaluate_actions(
                data.observations, actions, action_masks=data.action_masks
            )
            values = values.flatten()
            advantages = data.advantages
            if agent.normalize_advantage:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            ratio = torch.exp(log_prob - data.old_log_prob)
            policy_loss_1 = advantages * ratio
            policy_loss_2 = advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
            policy_loss = -torch.min(policy_loss_1, policy_loss_2).mean()
            if clip_range_vf is None:
                values_pred = values
            else:
                values_pred = data.old_values + torch.clamp(values - data.old_values, -clip_range_vf, clip_range_vf)
            value_loss = F.mse_loss(data.returns, values_pred)
            entropy_loss = -torch.mean(-log_prob) if entropy is None else -torch.mean(entropy)
            loss = policy_loss + agent.ent_coef * entropy_loss + agent.vf_coef * value_loss
            with torch.no_grad():
                clip_fraction = torch.mean((torch.abs(ratio - 1) > clip_range).float())
                stats.append(torch.stack([policy_loss, value_loss, entropy_loss, clip_fraction]))
                log_ratio = log_prob - data.old_log_prob
                kls.append(torch.mean((torch.exp(log_ratio) - 1) - log_ratio))
            if agent.target_kl is not None and kls[-1].cpu().numpy() > 1.5 * agent.target_kl:
                continue_training = False
                if agent.verbose >= 1:
                    print(f"Early stopping at step {epoch} due to reaching max kl: {kls[-1].item():.2f}")
                break
            policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), agent.max_grad_norm)
            policy.optimizer.step()
        agent._n_updates += 1
        if not continue_training:
            break
    values_returns = torch.stack([buffer._values, buffer._returns])
    return UpdateStats(torch.stack(stats, 1), torch.stack(kls), values_returns, policy_entropy.reshape(1))


def read_updates(updates: list[UpdateStats]) -> list[dict[str, float]]:
    """Each update's log as `MaskablePPO.train` records it, from one read of the device.

    SB3 averages `.item()` floats in float64, the KL's float32 numpy scalars in float32, and takes the
    explained variance of the rollout's float32 values and returns with numpy: so does this.
    """
    if not updates:
        return []
    fields = [(u.minibatches, u.approx_kl, u.values_returns, u.policy_entropy) for u in updates]
    host = torch.cat([t.flatten() for f in fields for t in f]).cpu().numpy()
    rows, at = [], 0
    for f in fields:
        parts = []
        for t in f:
            parts.append(host[at : at + t.numel()].reshape(t.shape))
            at += t.numel()
        minibatches, kl, (values, returns), entropy = parts
        row = {k: float(np.mean(v.tolist())) for k, v in zip(MINIBATCH_STATS, minibatches, strict=True)}
        row |= {"approx_kl": float(np.mean(kl)), "explained_variance": explained_variance(values, returns)}
        rows.append(row | {"policy_entropy": float(entropy[0])})
    return rows
