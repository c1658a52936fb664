"""Does the agent learn? Measurements of the policy and of its reward, taken on fixed probes.

An argmax label set can look decisive while the policy behind it is uniform (the argmax of a
near-uniform policy is set by tiny logit offsets), so the policy is measured directly:

* `agent/policy_entropy`, `agent/max_prob`: the masked policy's label distribution per image on a
  fixed probe of training images (un-augmented), its entropy in nats (ln psi = uniform over a
  block) and its largest probability, averaged over images;
* `agent/kl_from_init`: mean KL(policy || initial policy) on the same probe;
* `agent/sampled_label_entropy`: entropy of the labels the agent *sampled* in its epoch, per
  primary class, averaged over classes (the loop's `labels/entropy` is that of the argmax labels);
* `agent/reward_label_share`, `agent/reward_batch_share` (and `_sd`): a small two-way layout of
  rewards, `LABEL_SETS` label sets drawn from the policy for one fixed batch, each trained into a
  copy of the canonical network and rewarded on `EVAL_BATCHES` evaluation batches: the share of
  the reward's sum of squares due to the label set (what the agent chose) and due to the
  evaluation batch (noise to the agent). A reward that carries no signal about the actions has a
  label share near 0. The report turns these into method-of-moments variance components
  (`rlaux.report.stats.two_way_components`), which do not count the residual as a label effect;
* `agent/reward_uniform_*`: the same layout with label sets drawn uniformly in-block instead of from
  the policy (a sharpening policy draws label sets that differ less, whatever the reward does).

Every draw uses its own seeded generator, and the global random state is restored, so a run with
diagnostics is the same run as one without (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlaux.methods.rl.agent import label_probs, masked_policy

if TYPE_CHECKING:
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    from rlaux.batch import Batch
    from rlaux.methods.rl.env import AuxTaskEnv

PROBE_IMAGES = 256
LABEL_SETS, EVAL_BATCHES = 4, 3
STREAM_PROBE = 6


class AgentProbe:
    """The fixed probes of one run; `measure(epoch)` returns the epoch's `agent/*` columns."""

    def __init__(self, env: AuxTaskEnv, policy: MaskableActorCriticPolicy) -> None:
        self.env, self.policy, self.trainer = env, policy, env.trainer
        train = self.trainer.data.train
        g = self.trainer.generator(0, STREAM_PROBE)
        idx = torch.randperm(len(train), generator=g, device=train.y.device)[:PROBE_IMAGES]
        self.x, self.y = self.trainer.augment.normalize(train.x[idx]), train.y[idx]
        self.initial = self.label_distribution()  # the seeded initial policy: the same again on resume

    @torch.no_grad()
    def label_distribution(self) -> Tensor:
        self.policy.set_training_mode(False)
        return label_probs(self.policy, self.x, self.env.codec.action_masks(self.y))

    def measure(self, epoch: int) -> dict[str, float]:
        devices = [self.trainer.device] if self.trainer.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            row = self.policy_stats() | self.reward_signal(epoch)
        values = torch.stack(list(row.values())).tolist()  # one read from the device
        sampled = self.env.sandbox.sampled.read().get("labels/entropy", float("nan"))
        return {f"agent/{k}": v for k, v in zip(row, values, strict=True)} | {"agent/sampled_label_entropy": sampled}

    def policy_stats(self) -> dict[str, Tensor]:
        p, p0 = self.label_distribution(), self.initial
        kl = torch.where(p > 0, p * (p.clamp_min(1e-30).log() - p0.clamp_min(1e-30).log()), 0.0)
        return {
            "policy_entropy": -torch.special.xlogy(p, p).sum(1).mean(),
            "max_prob": p.max(1).values.mean(),
            "kl_from_init": kl.sum(1).mean(),
        }

    @torch.no_grad()
    def reward_signal(self, epoch: int) -> dict[str, Tensor]:
        """The layout twice on one batch and the same evaluation batches: label sets drawn from the policy (which
        differ less as it sharpens), then drawn uniformly in-block (`reward_uniform_*`, which do not)."""
        sandbox, codec = self.env.sandbox, self.env.codec
        g = self.trainer.generator(epoch, STREAM_PROBE)
        batch = next(self.trainer.batches(epoch, STREAM_PROBE))
        evals = [sandbox.reward_batch(g) for _ in range(EVAL_BATCHES)]
        self.policy.set_training_mode(False)
        masks = codec.action_masks(batch.y)
        # the paper's bonus depends on the evaluation batch only (both layouts share it); erratum 11's on the label set
        bonus = [
            None if self.trainer.cfg.errata.target_entropy_reward else sandbox.entropy_bonus(x, y) for x, y in evals
        ]
        policy = self._layout(batch, evals, bonus, lambda: sample_actions(self.policy, batch.x, masks, g))
        uniform = self._layout(batch, evals, bonus, lambda: codec.uniform_actions(batch.y, g))
        return policy | {k.replace("reward_", "reward_uniform_", 1): v for k, v in uniform.items()}

    def _layout(
        self,
        batch: Batch,
        evals: list[tuple[Tensor, Tensor]],
        bonus: list[Tensor | None],
        draw: Callable[[], Tensor],
    ) -> dict[str, Tensor]:
        """LABEL_SETS label sets from `draw`, each trained into a copy for one step and rewarded on every evaluation
        batch: the sums-of-squares shares and the standard deviations of row and column means."""
        sandbox, codec = self.env.sandbox, self.env.codec
        rewards = torch.empty(LABEL_SETS, EVAL_BATCHES, device=self.trainer.device)
        for i in range(LABEL_SETS):
            targets = codec.targets(draw(), batch.y)
            model, optimizer = sandbox.new_copy()
            with torch.enable_grad():
                self.trainer.train_step(model, optimizer, batch, targets)
            for j, (x, y) in enumerate(evals):
                rewards[i, j] = sandbox.reward_of(model, x, y, targets, bonus[j])
        centred = rewards - rewards.mean()
        total = centred.square().sum().clamp_min(1e-30)
        by_label = EVAL_BATCHES * centred.mean(1).square().sum()
        by_batch = LABEL_SETS * centred.mean(0).square().sum()
        return {
            "reward_label_share": by_label / total,
            "reward_batch_share": by_batch / total,
            "reward_label_sd": rewards.mean(1).std(),
            "reward_batch_sd": rewards.mean(0).std(),
        }


def sample_actions(policy: MaskableActorCriticPolicy, x: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
    """Draws of the masked policy's actions from `generator` (SB3's `sample()` uses the global stream)."""
    dist = masked_policy(policy, x, masks)
    parts = getattr(dist, "distributions", None) or [dist.distribution]
    draws = [torch.multinomial(part.probs, 1, generator=generator) for part in parts]
    return torch.cat(draws, dim=1) if len(draws) > 1 else draws[0][:, 0]
