"""Does the agent learn? The PPO ratio, the agent diagnostics, the placebo and the loss-scale control."""

from __future__ import annotations

import math

import pytest
import torch
from test_rl import make_trainer, rl_method, splits  # noqa: F401  (fixtures)

from rlaux.batch import AuxTargets
from rlaux.trainer import total_loss
from rlaux.training import train_epoch

ONE_PASS = dict(n_steps=90, ppo_batch_size=90, n_epochs=1)  # one minibatch per rollout, one gradient step


def ppo_updates(method) -> list[dict[str, float]]:
    """Record SB3's logged statistics after every PPO update of `method`'s agent."""
    records: list[dict[str, float]] = []
    agent, update = method.agent, method.agent.train

    def train_and_record() -> None:
        update()
        records.append({k: float(agent.logger.name_to_value[f"train/{k}"]) for k in ("approx_kl", "clip_fraction")})

    agent.train = train_and_record
    return records


@pytest.mark.parametrize("train_mode_batchnorm", [False, True])
def test_ppo_ratio_is_one_before_the_first_gradient_step(make_trainer, train_mode_batchnorm):  # noqa: F811
    """One pass, one minibatch: the update's log-probabilities are evaluated before any step, so the
    importance ratio is 1 (approx_kl ~ 0, nothing clipped), unless BatchNorm switches statistics
    between the rollout and the update (errata.ppo_train_mode_batchnorm, SB3's behaviour)."""
    trainer = make_trainer(
        n_train=270, method="rl", rl=ONE_PASS, errata={"ppo_train_mode_batchnorm": train_mode_batchnorm}
    )
    method = rl_method(trainer)
    updates = ppo_updates(method)
    for epoch in range(2):
        train_epoch(trainer, method, epoch)  # the agent epoch (3 rollouts), then the main epoch
    assert len(updates) == 6
    kl = [u["approx_kl"] for u in updates]
    if train_mode_batchnorm:
        assert max(kl) > 1e-5  # the ratio measures BatchNorm's two modes (it grows as the running statistics lag)
    else:
        assert max(kl) < 1e-6, kl
        assert all(u["clip_fraction"] == 0 for u in updates)


def test_batchnorm_running_statistics_follow_the_rollouts(make_trainer):  # noqa: F811
    """The update no longer moves BatchNorm's running statistics; `refresh_batchnorm` must, or the
    agent's trunk would normalise with its initial (0, 1) statistics forever."""
    method = rl_method(make_trainer(n_train=270, method="rl", rl=ONE_PASS))
    bn = next(m for m in method.agent.policy.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    method.before_epoch(0)
    assert not torch.equal(bn.running_mean, before)
    assert int(bn.num_batches_tracked) == 3  # one refresh forward per rollout minibatch


@pytest.mark.slow  # two RL epochs twice
def test_diagnostics_never_change_the_run(make_trainer):  # noqa: F811
    def run(diagnostics: bool):
        trainer = make_trainer(n_train=270, method="wa-rl", rl=ONE_PASS | {"diagnostics": diagnostics})
        method = rl_method(trainer)
        rows = [train_epoch(trainer, method, epoch) for epoch in range(2)]
        return rows, trainer.model.state_dict(), method.agent.policy.state_dict()

    (rows_on, main_on, agent_on), (rows_off, main_off, agent_off) = run(True), run(False)
    for on, off in zip(rows_on, rows_off, strict=True):
        assert {k: v for k, v in on.items() if not k.startswith("agent/")} == off
        assert {k for k in on if k.startswith("agent/")} >= {
            "agent/policy_entropy",
            "agent/max_prob",
            "agent/kl_from_init",
            "agent/sampled_label_entropy",
            "agent/reward_label_share",
            "agent/reward_batch_share",
            "agent/reward_uniform_label_share",
            "agent/reward_uniform_label_sd",
        }
    for on, off in ((main_on, main_off), (agent_on, agent_off)):
        assert all(torch.equal(on[k], off[k]) for k in on)


def test_diagnostics_measure_the_policy_not_its_argmax(make_trainer):  # noqa: F811
    """An untrained masked policy is near uniform over each block: entropy ~ ln 5, max prob ~ 1/5, no KL
    from itself; a policy made sharp by hand has low entropy, large KL, and low sampled-label entropy."""
    trainer = make_trainer(n_train=270, method="rl", rl=ONE_PASS)
    method = rl_method(trainer)
    probe = method.probe
    stats = {k: v.item() for k, v in probe.policy_stats().items()}
    assert stats["policy_entropy"] == pytest.approx(math.log(5), abs=0.02)
    assert stats["max_prob"] == pytest.approx(0.2, abs=0.02)
    assert stats["kl_from_init"] == pytest.approx(0.0, abs=1e-6)

    head = method.agent.policy.action_net
    with torch.no_grad():  # logits +30 on subclass 0 of every block: a nearly deterministic policy
        head.bias.copy_(torch.tensor([30.0 if k % 5 == 0 else 0.0 for k in range(50)]))
    row = method.before_epoch(0)
    assert row["agent/policy_entropy"] < 0.01 and row["agent/max_prob"] > 0.99
    assert row["agent/kl_from_init"] > 1.0
    assert row["agent/sampled_label_entropy"] < 0.05  # the agent epoch's draws follow the sharp policy
    assert 0.0 <= row["agent/reward_label_share"] <= 1.0 and 0.0 <= row["agent/reward_batch_share"] <= 1.0
    assert row["agent/reward_label_share"] + row["agent/reward_batch_share"] <= 1.0 + 1e-6
    # a deterministic policy draws the same label set every time: the labels explain no variance
    assert row["agent/reward_label_share"] < 1e-6
    # label sets drawn uniformly in-block still differ, so that probe still sees the labels' effect on the reward
    assert row["agent/reward_uniform_label_share"] > 1e-6
    assert row["agent/reward_uniform_label_sd"] > 0 and row["agent/reward_label_sd"] < 1e-6


@pytest.mark.parametrize("placebo", [False, True])
def test_placebo_reward_does_not_depend_on_the_actions(make_trainer, placebo):  # noqa: F811
    trainer = make_trainer(n_train=270, method="rl", rl=ONE_PASS | {"placebo": placebo})
    sandbox = rl_method(trainer).env.sandbox
    batch = next(trainer.batches(0))
    rewards = []
    for offset in (0, 4):  # every image labelled with subclass 0, then subclass 4, of its block
        sandbox.begin_epoch(0)
        sandbox.restore()
        rewards.append(sandbox.step(batch, 5 * batch.y + offset).item())
    if placebo:
        assert rewards[0] == rewards[1]
    else:
        assert rewards[0] != rewards[1]


def test_loss_scale_multiplies_the_primary_loss_only(small_config):
    torch.manual_seed(0)
    logits = (torch.randn(8, 10), torch.randn(8, 50))
    y, aux = torch.randint(10, (8,)), torch.randint(50, (8,))
    targets = AuxTargets(aux, torch.full((8,), 2.0))
    base, scaled = small_config(), small_config(primary_loss_scale=9)
    primary = total_loss(logits, y, AuxTargets(None, torch.ones(8)), base)
    assert total_loss(logits, y, AuxTargets(None, torch.ones(8)), scaled) == pytest.approx(9 * primary.item())
    assert total_loss(logits, y, targets, scaled) - total_loss(logits, y, targets, base) == pytest.approx(
        8 * primary.item()
    )
