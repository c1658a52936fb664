"""RL-AUX and WA-RL as a plug-in method: a PPO agent labels every training image (docs/method.md §5).

Each epoch of the loop alternates the paper's two modes over the same batch order:

1. train-agent (`before_epoch`): the agent labels epoch e's batches with stochastic
   actions, a disposable copy of the main network trains on them, and PPO learns from the
   rewards; the copy is then discarded (the canonical network is never touched).
2. train-main (the loop's own epoch): `targets` returns the agent's deterministic labels
   (argmax of the block-masked policy) for each batch; the loop trains the main network
   and steps the scheduler, and the result is the new canonical network.

`wa-rl` is the same class with a per-sample weight bin in each action. `rl.placebo` cuts the
reward's dependence on the actions (the control for "does the reward teach the agent anything?"),
`rl.reward oracle` gives it a reward that is the answer (the control for "can this agent learn at all?"),
`rl.train_agent false` never trains it (the authors' "Randomized Task": labels from the initial policy),
and `rl.diagnostics` logs what the agent learned each epoch (`diagnostics.AgentProbe`).
"""

from __future__ import annotations

from typing import Any

import torch

from rlaux.batch import AuxTargets, Batch
from rlaux.methods.base import AuxMethod, EpochStats, MethodContext
from rlaux.methods.rl.agent import make_agent, unvalidated_distributions
from rlaux.methods.rl.collector import BatchedCollector, Collector, EnvCollector, rollout_budget
from rlaux.methods.rl.diagnostics import AgentProbe
from rlaux.methods.rl.env import AuxTaskEnv


class RLAux(AuxMethod):
    """RL-AUX (cfg.method "rl") and WA-RL ("wa-rl"); history columns are prefixed "rl/"."""

    def __init__(self, ctx: MethodContext) -> None:
        super().__init__(ctx)
        self.env = AuxTaskEnv(ctx.trainer)
        self.codec = self.env.codec
        self.agent = make_agent(self.env, ctx.cfg, ctx.device)
        self.env.attach_policy(self.agent.policy)
        budget = rollout_budget(self.agent, self.env)
        if budget < min(self.cfg.batch_size, len(ctx.train)):
            raise ValueError(
                f"an agent epoch collects {budget} of its {self.env.epoch_steps()} steps (whole PPO rollouts "
                f"of rl.n_steps={self.agent.n_steps}), less than one batch, so the agent would never see "
                f"a reward; raise train_size or lower rl.n_steps"
            )
        collector = BatchedCollector if self.cfg.rl.collector == "batched" else EnvCollector
        self.collector: Collector = collector(self.agent, self.env)
        self.probe = AgentProbe(self.env, self.agent.policy) if self.cfg.rl.diagnostics else None
        self.weights = EpochStats()

    # ------------------------------------------------------------------ train-agent epoch
    def before_epoch(self, epoch: int) -> dict[str, float]:
        if not self.cfg.rl.train_agent:  # the untrained-agent control: labels from the initial policy, nothing learned
            with unvalidated_distributions():
                return self.probe.measure(epoch) if self.probe is not None else {}
        with unvalidated_distributions():
            self.collector.run(epoch)
        rewards = self.env.sandbox.pop_rewards()
        log = {"reward_mean": sum(rewards) / len(rewards)} | self.agent.pop_log()
        if self.ctx.train.aux is not None:  # sampled labels against the human fine labels (CIFAR-100-20)
            log["fine_agreement"] = self.env.sandbox.pop_agreement()
        with unvalidated_distributions():
            diagnostics = self.probe.measure(epoch) if self.probe is not None else {}
        return {f"rl/{key}": value for key, value in log.items()} | diagnostics

    # ------------------------------------------------------------------ train-main epoch
    def targets(self, batch: Batch) -> AuxTargets:
        """The masked policy's most likely action per image (BatchNorm in eval mode, as in rollouts)."""
        self.agent.policy.set_training_mode(False)
        with torch.no_grad(), unvalidated_distributions():
            actions = self.agent.policy.labels(batch.x, self.codec.action_masks(batch.y), deterministic=True)
        _, w = self.codec.split(actions)
        if w is not None:
            self.weights.add("rl/weight", w, std=True)
        return self.codec.targets(actions, batch.y)

    def after_epoch(self, epoch: int) -> dict[str, float]:
        """WA-RL: mean and std of the main epoch's weights w in [0, 1] (label statistics: the loop's `labels/`)."""
        return self.weights.read()

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.agent.policy.state_dict(), "optimizer": self.agent.policy.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.policy.load_state_dict(state["policy"])
        self.agent.policy.optimizer.load_state_dict(state["optimizer"])
