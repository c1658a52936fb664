"""The agent-learning controls of issue 26: the oracle reward (`rl.reward oracle`), a reward that is the answer
delivered as the paper's is, and the paired reward (`rl.reward_pairing`)."""

from __future__ import annotations

import math

import pytest
import torch

from rlaux.config import build_config
from rlaux.data import load_splits
from rlaux.errors import ConfigError
from rlaux.methods import make_method
from rlaux.methods.base import MethodContext
from rlaux.trainer import Trainer

C100 = dict(dataset="cifar100-20", train_size=300, test_size=100, width=0.0625)
PPO = dict(n_steps=100, ppo_batch_size=100, n_epochs=1)


@pytest.fixture(scope="module")
def c100_splits(data_root):
    return load_splits(build_config(dict(data_root=str(data_root)), C100))


@pytest.fixture
def sandbox_of(small_config, c100_splits):
    def make(**rl):
        trainer = Trainer.build(small_config(**C100, method="rl", rl=PPO | rl), c100_splits)
        method = make_method("rl", MethodContext.of(trainer))
        return trainer, method

    return make


def test_the_oracle_reward_is_the_share_of_labels_that_equal_the_fine_labels(sandbox_of):
    """All fine labels chosen: 1; every label moved to the next subclass of its block: 0; 40 of 100 right: 0.4.
    The copy is never trained (the reward does not come from it)."""
    trainer, method = sandbox_of(reward="oracle")
    sandbox = method.env.sandbox
    batch = next(trainer.batches(0))
    human = trainer.data.train.aux[batch.index]
    wrong = 5 * batch.y + (human - 5 * batch.y + 1) % 5
    before = [p.clone() for p in sandbox.model.parameters()]
    assert sandbox.step(batch, human).item() == 1.0
    assert sandbox.step(batch, wrong).item() == 0.0
    mixed = torch.where(torch.arange(len(human)) < 40, human, wrong)
    assert sandbox.step(batch, mixed).item() == pytest.approx(40 / len(human))
    assert all(torch.equal(a, b) for a, b in zip(before, sandbox.model.parameters(), strict=True))
    assert sandbox.pop_agreement() == pytest.approx((1 + 0 + 40 / len(human)) / 3)


def test_oracle_noise_is_seeded_gaussian_on_top_of_the_agreement(sandbox_of):
    """σ = 0.5: reward - agreement is σ·z with z from the oracle's own stream, the same again for the same epoch."""
    trainer, method = sandbox_of(reward="oracle", oracle_noise=0.5)
    sandbox = method.env.sandbox
    batch = next(trainer.batches(0))
    human = trainer.data.train.aux[batch.index]
    draws = []
    for _ in range(2):
        sandbox.begin_epoch(3)
        draws.append([sandbox.step(batch, human).item() - 1.0 for _ in range(200)])
    assert draws[0] == draws[1]
    noise = torch.tensor(draws[0])
    assert noise.std().item() == pytest.approx(0.5, rel=0.15) and abs(noise.mean().item()) < 0.15


def test_every_rl_run_on_cifar100_logs_the_sampled_labels_agreement(sandbox_of):
    """rl/fine_agreement: the paper's reward too (the share of sampled labels that are the fine labels); an
    untrained policy samples near uniformly over a block's 5 subclasses, so about 1/5."""
    _, method = sandbox_of()
    row = method.before_epoch(0)
    assert row["rl/fine_agreement"] == pytest.approx(0.2, abs=0.08)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (dict(dataset="cifar10", method="rl", rl={"reward": "oracle"}), "rl.reward 'oracle' .* dataset 'cifar10'"),
        (dict(method="rl", rl={"oracle_noise": 0.1}), r"rl.oracle_noise \(0.1\) applies to rl.reward 'oracle'"),
        (dict(method="rl", rl={"reward": "oracle", "placebo": True}), "two different controls"),
        (dict(method="maxl", rl={"reward": "oracle"}), "rl.reward applies only to rl, wa-rl"),
    ],
)
def test_the_oracle_is_refused_where_it_means_nothing(config, message):
    with pytest.raises(ConfigError, match=message):
        build_config(config)


def test_the_oracle_is_off_by_default():
    cfg = build_config(dict(method="rl"))
    assert cfg.rl.reward == "paper" and cfg.rl.oracle_noise == 0.0 and not math.isnan(cfg.rl.oracle_noise)


def test_a_paired_reward_adds_the_copys_loss_before_the_step_on_the_same_batch(sandbox_of):
    """rl.reward_pairing: R = L_before - L_after + bonus, the paper's R = -L_after + bonus, both on the same reward
    batch (the epoch's first); so R_paired - R_paper = L_before, the untouched copy's focal loss on that batch."""
    import copy

    from rlaux.methods.rl.env import STREAM_REWARD

    rewards, before = {}, None
    for pairing in (False, True):
        trainer, method = sandbox_of(reward_pairing=pairing)
        sandbox = method.env.sandbox
        sandbox.begin_epoch(0)
        sandbox.restore()
        batch = next(trainer.batches(0))
        actions = trainer.data.train.aux[batch.index]
        if pairing:
            untouched = copy.deepcopy(sandbox.model)
            x, y = sandbox.reward_batch(trainer.generator(0, STREAM_REWARD))
            targets = sandbox.codec.targets(actions, batch.y)
            before = -sandbox.reward_of(untouched, x, y, targets, bonus=torch.zeros(())).item()
        rewards[pairing] = sandbox.step(batch, actions).item()
    assert before is not None and before > 0
    assert rewards[True] - rewards[False] == pytest.approx(before, rel=1e-5)


def test_pairing_is_refused_with_the_oracle():
    with pytest.raises(ConfigError, match=r"rl\.reward_pairing pairs the paper's loss-based reward"):
        build_config(dict(method="rl", rl={"reward": "oracle", "reward_pairing": True}))


def test_batch_credit_gives_every_action_its_batchs_reward_minus_the_critics_mean(sandbox_of, monkeypatch):
    """rl.credit batch on 270 images in batches of 100: rollouts of one batch (n_steps 100), 2 PPO updates per
    agent epoch (the partial third batch is not collected, as with the paper's credit); at each update every
    return is the batch's reward and every advantage that reward minus the batch's mean value, not normalised."""
    _, method = sandbox_of(credit="batch")
    agent, buffer = method.agent, method.agent.rollout_buffer
    assert agent.n_steps == 100 and agent.normalize_advantage is False
    seen, train = [], agent.train

    def recording_train():
        seen.append((buffer._returns.clone(), buffer.advantages.clone(), buffer._values.clone()))
        train()

    monkeypatch.setattr(agent, "train", recording_train)
    row = method.before_epoch(0)
    assert len(seen) == 2
    for returns, advantages, values in seen:
        assert torch.all(returns == returns[0]) and returns[0] != 0
        assert torch.allclose(advantages, returns - values.mean())
    assert row["rl/reward_mean"] == pytest.approx(sum(r[0].item() for r, _, _ in seen) / 2)
    assert build_config(dict(method="rl")).rl.credit == "paper"


@pytest.mark.parametrize(
    ("rl", "message"),
    [
        ({"credit": "batch", "collector": "env"}, "rl.credit 'batch' is written for rl.collector 'batched'"),
        ({"credit": "batch", "n_steps": 79}, r"rl.n_steps is batch_size \(100\); drop rl.n_steps \(79\)"),
    ],
)
def test_batch_credit_is_refused_where_it_cannot_align(rl, message):
    with pytest.raises(ConfigError, match=message):
        build_config(dict(method="rl", rl=rl))
