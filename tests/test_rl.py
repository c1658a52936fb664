"""RL-AUX / WA-RL: the env, action semantics, reward, agent, collectors, schedule and resume."""

from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import replace
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium.utils.env_checker import check_env as gym_check_env
from scipy.stats import chi2, chi2_contingency
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rlaux.cli import build_parser, config_from_args, main
from rlaux.config import build_config
from rlaux.data import load_splits
from rlaux.errors import ConfigError
from rlaux.losses import block_mask, focal_loss
from rlaux.methods import make_method
from rlaux.methods.base import MethodContext
from rlaux.methods.rl import ENV_ID
from rlaux.methods.rl.actions import ActionCodec
from rlaux.methods.rl.agent import label_probs
from rlaux.methods.rl.env import AuxTaskEnv
from rlaux.methods.rl.method import RLAux
from rlaux.methods.rl.reward import STREAM_REWARD
from rlaux.trainer import Trainer
from rlaux.training import train

TINY = dict(train_size=300, test_size=100, width=0.0625)  # 270 training images: batches of 100, 100, 70
SHORT = dict(n_train=90, batch_size=30)  # 3 batches of 30: few single-image env steps
FAST_PPO = dict(n_steps=30, ppo_batch_size=30, n_epochs=1)  # 30 divides every epoch length used here


@pytest.fixture(scope="module")
def splits(data_root):
    return load_splits(build_config(dict(dataset="cifar10", data_root=str(data_root)), TINY))


@pytest.fixture
def make_trainer(small_config, splits):
    """`make_trainer(n_train=None, method=..., rl={...}, ...)` on the shared tiny splits,
    the training split cut to its first `n_train` images if given."""

    def make(n_train: int | None = None, **overrides) -> Trainer:
        data = splits if n_train is None else replace(splits, train=splits.train.take(torch.arange(n_train)))
        return Trainer.build(small_config(**TINY | overrides), data)

    return make


def rl_method(trainer: Trainer) -> RLAux:
    ctx = MethodContext.of(trainer)
    return make_method(trainer.cfg.method, ctx)  # type: ignore[return-value]


def codec(**overrides) -> ActionCodec:
    return ActionCodec(build_config(dict(dataset="cifar10", method="rl"), overrides), num_classes=10)


# ---------------------------------------------------------------- env
@pytest.mark.parametrize(
    "method, target, space",
    [
        ("rl", "masked", gym.spaces.Discrete(50)),
        ("wa-rl", "masked", gym.spaces.MultiDiscrete([50, 21])),
        ("rl", "in-block", gym.spaces.Discrete(5)),
    ],
)
def test_env_passes_gymnasium_and_sb3_checkers(make_trainer, method, target, space):
    env = gym.make(ENV_ID, trainer=make_trainer(method=method, rl={"target": target})).unwrapped
    assert env.action_space == space
    assert env.observation_space.shape == (3, 32, 32) and env.observation_space.dtype == np.float32
    with warnings.catch_warnings():  # SB3's advice for its default CnnPolicy on uint8 images; ours is a float image
        warnings.filterwarnings("ignore", message=r".*(is an image|minimal resolution).*")
        gym_check_env(env)
        sb3_check_env(env)


def test_episode_is_one_epoch_with_reward_on_batch_ends(make_trainer):
    trainer = make_trainer(method="rl")
    env = rl_method(trainer).env  # the agent's policy attached: the reward's entropy term reads it
    obs, _ = env.reset(options={"epoch": 2})
    images = torch.cat([b.x for b in trainer.batches(2)]).numpy()
    rewards, seen = [], [obs]
    for step in range(len(images)):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.append(reward)
        assert terminated == (step == len(images) - 1) and not truncated
        seen.append(obs)
    np.testing.assert_array_equal(np.stack(seen[:-1]), images)  # the main epoch's order and augmentation
    assert [i for i, r in enumerate(rewards) if r != 0] == [99, 199, 269]


# ---------------------------------------------------------------- actions -> targets
def test_default_target_is_the_chosen_class_and_the_mask_is_the_block():
    c = codec()
    targets = c.targets(torch.tensor([2, 7, 49]), torch.tensor([0, 1, 9]))
    assert targets.target.tolist() == [2, 7, 49] and torch.all(targets.weight == 1.0)
    masks = c.action_masks(torch.tensor([0, 9]))
    assert masks.shape == (2, 50) and masks[0, :5].all() and masks[1, 45:].all() and masks.sum() == 10
    wa = codec(method="wa-rl").action_masks(torch.tensor([3]))
    assert wa.shape == (1, 71) and wa[0, 15:20].all() and wa[0, 50:].all() and wa.sum() == 5 + 21  # bins never masked


def test_unmasked_soft_target_erratum_is_the_authors_softmax_of_the_one_hot():
    c = codec(errata={"unmasked_soft_targets": True})
    assert c.action_masks(torch.tensor([0, 3])).all()  # no mask: any of the K classes
    targets = c.targets(torch.tensor([2, 7]), torch.tensor([0, 0]))
    a, b = math.e / (math.e + 4), 1 / (math.e + 4)  # 0.405 chosen, 0.149 others
    expected = torch.zeros(2, 50)
    expected[0, :5] = torch.tensor([b, b, a, b, b])
    expected[1, :5] = 0.2  # pick outside the block: one-hot of zeros over it -> uniform
    torch.testing.assert_close(targets.target, expected, rtol=1e-6, atol=1e-7)
    assert targets.labels().tolist() == [2, 7]  # diagnostics see the pick, not the target's argmax


def test_in_block_target_is_the_hard_subclass_label():
    c = codec(rl={"target": "in-block"})
    assert c.space == gym.spaces.Discrete(5)
    targets = c.targets(torch.tensor([3, 0, 4]), torch.tensor([2, 0, 9]))
    assert targets.target.tolist() == [13, 0, 49]


@pytest.mark.parametrize("erratum, lo, hi", [(False, 2.0**-5, 2.0**5), (True, 2.0**-3, 2.0**5)])
def test_wa_rl_weight_bins(erratum, lo, hi):
    c = codec(method="wa-rl", errata={"weight_scale_8w3": erratum})
    weight = c.targets(torch.tensor([[0, 0], [1, 10], [2, 20]]), torch.tensor([0, 0, 0])).weight
    torch.testing.assert_close(weight, torch.tensor([lo, math.sqrt(lo * hi), hi]))


def test_broadcast_erratum_builds_targets_from_batch_positions():
    c = codec(batch_size=50, errata={"broadcast_targets": True, "unmasked_soft_targets": True})
    g = torch.Generator().manual_seed(0)
    actions, y = torch.randint(0, 50, (50,), generator=g), torch.randint(0, 10, (50,), generator=g)
    target = c.targets(actions, y).target
    top = actions.max().item()
    for i in range(50):
        block = slice(5 * y[i], 5 * y[i] + 5)
        expected = torch.zeros(50, dtype=torch.float64)
        e = torch.exp(actions[block].double() - top)  # the actions of samples at positions 5y..5y+4, row max over all
        expected[block] = e / (e.sum() + 1e-8)
        torch.testing.assert_close(target[i].double(), expected, rtol=1e-4, atol=1e-7)
    same = (y == y[0]).nonzero().squeeze(1)
    assert torch.equal(target[same], target[same[:1]].expand(len(same), -1))  # same-class samples share one target
    with pytest.raises(ValueError, match="K = batch_size"):
        codec(errata={"broadcast_targets": True, "unmasked_soft_targets": True})  # K=50, B=100
    with pytest.raises(ConfigError, match="unmasked_soft_targets"):
        codec(batch_size=50, errata={"broadcast_targets": True})
    with pytest.raises(ValueError, match="exactly K=50"):
        c.targets(actions[:40], y[:40])


def authors_mask_softmax_reference(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The authors' utils/masked_softmax.py, row by row in float64 (docs/method.md §6 note on erratum 4):
    exp(x - max over the WHOLE row) * mask / (sum of that * mask + 1e-8)."""
    e = np.exp(x - x.max(axis=1, keepdims=True)) * mask
    return e / (e.sum(axis=1, keepdims=True) + 1e-8)


def test_broadcast_erratum_at_k_equals_b_100_has_the_authors_row_max_numerics():
    """docs/method.md §6.4 as it ran: cifar100-20, K = B = 100, integer actions 0..99 as one row of logits.
    A block whose actions sit far below the row's maximum keeps almost no target mass (a per-block
    max would give it mass 1), and the +1e-8 makes a block 18 below the maximum lose a quarter of
    its mass (without it: 1). Under a uniform policy: mean mass ~0.65, a quarter of samples < 0.01."""
    c = ActionCodec(
        build_config(
            dict(dataset="cifar100-20", method="rl", errata={"broadcast_targets": True, "unmasked_soft_targets": True})
        ),
        num_classes=20,
    )
    assert c.num_aux == 100 and c.psi == 5
    g = torch.Generator().manual_seed(0)
    y = torch.arange(100) % 20  # every class 5 times; class c's target reads batch positions 5c..5c+4
    actions = torch.randint(85, 99, (100,), generator=g)
    actions[0:5] = torch.tensor([0, 1, 2, 3, 4])  # class 0: 95 below the row maximum
    actions[5:10] = torch.tensor([80, 81, 80, 79, 78])  # class 1: 18 below: e^-18 ~ 1.5e-8, beside the +1e-8
    actions[95] = 99  # the row maximum, in class 19's block
    target = c.targets(actions, y).target.double()
    mask = block_mask(y, 100, 5).numpy()
    reference = authors_mask_softmax_reference(actions.double().expand(100, -1).numpy(), mask)
    mass, expected_mass = target.sum(1).numpy(), reference.sum(1)
    assert mass[y == 0].max() < 1e-3, f"class 0's block, 95 below the row max, kept mass {mass[y == 0]}"
    assert expected_mass[1] == pytest.approx(0.745, abs=0.001)  # the +1e-8 costs this block a quarter
    np.testing.assert_allclose(mass[y == 1], expected_mass[1], rtol=1e-4, err_msg="class 1: mass with the +1e-8")
    assert mass[y == 19] == pytest.approx(1.0, abs=1e-6)  # the block holding the row maximum
    np.testing.assert_allclose(target.numpy(), reference, rtol=1e-4, atol=1e-12)
    assert (target.numpy()[~mask] == 0).all()

    uniform = []  # the actions of a near-uniform unmasked policy, random labels
    for _ in range(100):
        a, labels = torch.randint(0, 100, (100,), generator=g), torch.randint(0, 20, (100,), generator=g)
        uniform.append(c.targets(a, labels).target.sum(1))
    masses = torch.cat(uniform)
    assert masses.mean().item() == pytest.approx(0.65, abs=0.05), masses.mean()
    below = (masses < 0.01).float().mean().item()  # mass < 0.01 when all 5 actions sit >= 23 below: (76/100)^5
    assert below == pytest.approx(0.25, abs=0.05), below


# ---------------------------------------------------------------- reward
def reward_batch(trainer, epoch):
    """The reward batch of `epoch`, drawn independently of the env: 256 training images with replacement."""
    g = trainer.generator(epoch, STREAM_REWARD)
    train_split = trainer.data.train
    idx = torch.randint(len(train_split), (256,), generator=g)
    return trainer.augment(train_split.x[idx], g), train_split.y[idx]


@pytest.mark.parametrize("target", ["masked", "in-block"])
def test_reward_is_minus_focal_loss_plus_entropy_of_the_policys_mean_distribution(make_trainer, target):
    """Paper (docs/method.md §6.11-6.12): focal primary loss; p_bar = mean over the reward images of the
    block-masked policy, computed here from the policy's raw logits, not through SB3's distribution."""
    trainer = make_trainer(method="rl", rl={"target": target})
    method = rl_method(trainer)
    sandbox, policy = method.env.sandbox, method.agent.policy
    torch.nn.init.normal_(policy.action_net.weight, std=0.3)  # an image-dependent policy
    sandbox.begin_epoch(3)
    labels = torch.tensor([0, 2, 3, 4]) if target == "in-block" else torch.tensor([0, 2, 7, 12])
    reward = sandbox.reward(sandbox.codec.targets(labels, torch.tensor([0, 0, 1, 2]))).item()

    x, y = reward_batch(trainer, 3)
    with torch.no_grad():
        loss = focal_loss(sandbox.model.train()(x)[0], y).mean().item()
        logits = policy.set_training_mode(False) or policy.action_net(policy.extract_features(x))
    if target == "in-block":
        probs = torch.zeros(256, 50)
        probs.scatter_(1, 5 * y[:, None] + torch.arange(5), logits.softmax(1))
    else:
        probs = logits.masked_fill(~block_mask(y, 50, 5), -math.inf).softmax(1)
    p_bar = probs.mean(0)
    entropy = -(p_bar[p_bar > 0] * p_bar[p_bar > 0].log()).sum().item()
    assert reward == pytest.approx(-loss + 0.2 * entropy, rel=1e-5)
    assert entropy > math.log(5)  # p_bar spreads over many blocks: the term is not the per-image entropy


@pytest.mark.parametrize("softmax_reward", [False, True])
def test_reward_errata_use_the_batch_targets_entropy_and_the_double_softmax(make_trainer, softmax_reward):
    trainer = make_trainer(
        method="rl",
        errata={"softmax_reward": softmax_reward, "target_entropy_reward": True, "unmasked_soft_targets": True},
    )
    sandbox = AuxTaskEnv(trainer).sandbox  # no policy attached: the erratum's reward does not need one
    sandbox.begin_epoch(3)
    targets = sandbox.codec.targets(torch.tensor([0, 2, 7, 12]), torch.tensor([0, 0, 1, 2]))
    reward = sandbox.reward(targets).item()

    a, b = math.e / (math.e + 4), 1 / (math.e + 4)  # p_bar by hand: four soft targets, all picks in-block
    p_bar = [
        (a + b) / 4,
        2 * b / 4,
        (b + a) / 4,
        2 * b / 4,
        2 * b / 4,
        b / 4,
        b / 4,
        a / 4,
        b / 4,
        b / 4,
        b / 4,
        b / 4,
        a / 4,
        b / 4,
        b / 4,
    ]
    entropy = -sum(p * math.log(p) for p in p_bar)
    x, y = reward_batch(trainer, 3)
    with torch.no_grad():
        logits = sandbox.model.train()(x)[0]
    loss = (F.cross_entropy(logits.softmax(1), y) if softmax_reward else focal_loss(logits, y).mean()).item()
    assert reward == pytest.approx(-loss + 0.2 * entropy, rel=1e-5)
    if softmax_reward:  # a softmax of probabilities: the loss is squashed into [log(e + 9) - 1, log(e + 8)]
        assert math.log(math.e + 9) - 1 <= loss <= math.log(math.e + 8)


def test_reward_without_an_attached_policy_takes_the_chosen_labels_entropy(make_trainer):
    """Any agent can step the env: with no policy to measure, the entropy term is that of the labels
    chosen in the batch (the authors' route, errata.target_entropy_reward), and the env says so."""
    rewards = {}
    for erratum in (False, True):
        sandbox = AuxTaskEnv(make_trainer(method="rl", errata={"target_entropy_reward": erratum})).sandbox
        sandbox.begin_epoch(3)
        rewards[erratum] = sandbox.reward(sandbox.codec.targets(torch.tensor([0, 7]), torch.tensor([0, 1]))).item()
        assert sandbox.entropy_term == "chosen-labels"
    assert math.isfinite(rewards[False]) and rewards[False] == rewards[True]


# ---------------------------------------------------------------- agent
@pytest.mark.parametrize("frozen_heads", [False, True])
def test_every_policy_parameter_is_optimised_unless_heads_are_frozen(make_trainer, frozen_heads):
    trainer = make_trainer(
        method="wa-rl", rl={"n_steps": 20, "ppo_batch_size": 10, "n_epochs": 1}, errata={"frozen_heads": frozen_heads}
    )
    agent = rl_method(trainer).agent
    policy = agent.policy
    optimised = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    heads = {name for name, _ in policy.named_parameters() if name.startswith(("action_net", "value_net"))}
    assert heads == {"action_net.weight", "action_net.bias", "value_net.weight", "value_net.bias"}
    assert policy.action_net.out_features == 50 + 21 and policy.value_net.out_features == 1
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    agent.learn(total_timesteps=20)  # one rollout, one PPO update
    changed = {name for name, p in policy.named_parameters() if not torch.equal(p, before[name])}
    if frozen_heads:
        assert {name for name, p in policy.named_parameters() if id(p) not in optimised} == heads
        assert changed == set(before) - heads
    else:
        assert all(id(p) in optimised for p in policy.parameters())
        assert changed == set(before)


def test_scalar_value_erratum_averages_over_the_minibatch_in_training_only(make_trainer):
    policy = rl_method(make_trainer(method="rl", errata={"scalar_value": True})).agent.policy
    features = torch.randn(6, 256)
    per_sample = policy.value_net.eval()(features)
    assert per_sample.unique().numel() == 6
    torch.testing.assert_close(policy.value_net.train()(features), per_sample.mean().expand(6, 1))


# ---------------------------------------------------------------- collectors
BUFFER_KEYS = (
    "observations",
    "actions",
    "action_masks",
    "rewards",
    "episode_starts",
    "values",
    "log_probs",
    "returns",
    "advantages",
)


def one_image_at_a_time(forward):
    """The policy's forward on each image alone, outputs stacked: a batch-of-one forward's kernels."""

    def forward_each(obs, action_masks=None, **kwargs):
        outs = [
            forward(obs[i : i + 1], action_masks=None if action_masks is None else action_masks[i : i + 1], **kwargs)
            for i in range(len(obs))
        ]
        return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))

    return forward_each


def record_rollouts(method: RLAux) -> list[dict[str, np.ndarray]]:
    """Copy each finished rollout buffer just before PPO's real update runs on it."""
    rollouts: list[dict[str, np.ndarray]] = []
    agent, buf = method.agent, method.agent.rollout_buffer
    update = agent.train

    def record_then_update() -> None:
        rollouts.append({k: torch.as_tensor(getattr(buf, k)).cpu().numpy().copy() for k in BUFFER_KEYS})
        update()

    agent.train = record_then_update  # type: ignore[method-assign]
    return rollouts


@pytest.mark.slow  # a minute each on 2 cores: the full suite runs it, the fast subset (CI on 3.13) does not
@pytest.mark.parametrize("reset", ["epoch", "batch"])
def test_batched_and_env_collectors_write_the_same_buffers_and_learn_the_same_policy(make_trainer, reset):
    """The literal MaskablePPO.learn loop on the env against the batched collector, with real PPO
    updates in between. Deterministic actions make the two loops comparable step by step; the
    minibatch shuffles come from one re-seeded numpy stream. n_steps=45 on an epoch of 3 batches
    of 30: the first rollout ends in the middle of batch 2, the second at the episode's end.

    The env loop forwards one image at a time; here the batched collector's forward is split into
    images too, so both sides run the same kernels and must agree bit for bit on any CPU (a batch
    of 30 against 30 batches of one differs by rounding that Adam then amplifies: issue 20).
    `test_batched_and_single_image_sampling_agree` covers the batched forward itself."""
    runs, params = {}, {}
    for collector in ("batched", "env"):
        rl = {"collector": collector, "n_steps": 45, "ppo_batch_size": 15, "n_epochs": 2, "reset": reset}
        method = rl_method(make_trainer(**SHORT, method="wa-rl", rl=rl))
        deterministic = partial(method.agent.policy.forward, deterministic=True)
        method.agent.policy.forward = one_image_at_a_time(deterministic)  # type: ignore[method-assign]
        runs[collector] = record_rollouts(method)
        initial = {k: v.detach().clone() for k, v in method.agent.policy.state_dict().items()}
        np.random.seed(123)
        method.train_agent(epoch=1)
        params[collector] = {k: v.detach().clone() for k, v in method.agent.policy.state_dict().items()}
    batched, env = runs["batched"], runs["env"]
    assert len(batched) == len(env) == 2
    for b, e in zip(batched, env, strict=True):
        for key in BUFFER_KEYS:
            np.testing.assert_array_equal(b[key], e[key], err_msg=key)
    for name, value in params["batched"].items():
        assert torch.equal(value, params["env"][name]), name
    assert not torch.equal(params["env"]["action_net.weight"], initial["action_net.weight"])  # PPO did update
    rewards = np.concatenate([r["rewards"].ravel() for r in batched])
    assert list(np.flatnonzero(rewards)) == [29, 59, 89]
    starts = np.concatenate([r["episode_starts"].ravel() for r in batched])
    assert list(np.flatnonzero(starts)) == ([0] if reset == "epoch" else [0, 30, 60])
    masks = np.concatenate([r["action_masks"].reshape(-1, 71) for r in batched])
    assert (masks[:, :50].sum(1) == 5).all() and masks[:, 50:].all()  # each step's block, and every weight bin


@pytest.mark.slow  # a minute each on 2 cores: the full suite runs it, the fast subset (CI on 3.13) does not
@pytest.mark.parametrize("collector", ["batched", "env"])
def test_masked_policy_never_labels_outside_the_block(make_trainer, collector):
    """A peaked random policy would mostly pick outside the block; with the mask it never does:
    not in the rollouts (stochastic actions), not in the main epoch (argmax)."""
    trainer = make_trainer(**SHORT, method="wa-rl", rl=FAST_PPO | {"collector": collector})
    method = rl_method(trainer)
    torch.nn.init.normal_(method.agent.policy.action_net.weight, std=1.0)
    picks = []
    step = method.env.sandbox.step
    method.env.sandbox.step = lambda batch, actions: picks.append((batch.y, actions[:, 0])) or step(batch, actions)  # type: ignore[method-assign]
    method.before_epoch(0)
    assert sum(len(y) for y, _ in picks) == 90
    for batch in trainer.batches(0):
        picks.append((batch.y, method.targets(batch).target))
    assert all(torch.equal(labels // 5, y) for y, labels in picks)
    unmasked = rl_method(make_trainer(**SHORT, method="wa-rl", rl=FAST_PPO, errata={"unmasked_soft_targets": True}))
    torch.nn.init.normal_(unmasked.agent.policy.action_net.weight, std=1.0)
    batch = next(trainer.batches(0))
    assert (unmasked.targets(batch).labels() // 5 != batch.y).float().mean() > 0.5  # the test has power


def test_batched_and_single_image_sampling_agree(make_trainer):
    """Fixed stochastic policy: per-image action frequencies drawn from one forward pass per
    batch and from one forward pass per env step agree (chi-square), and the test has power."""
    torch.manual_seed(0)
    method = rl_method(make_trainer(method="rl", rl={"target": "in-block"}))
    policy = method.agent.policy
    torch.nn.init.normal_(policy.action_net.weight, std=0.3)  # a peaked, image-dependent policy
    env = method.env
    obs = [env.reset(options={"epoch": 0})[0]] + [env.step(0)[0] for _ in range(9)]
    images = torch.as_tensor(np.stack(obs))
    draws = 400

    def sample(x: torch.Tensor) -> np.ndarray:  # (draws, len(x)) actions, sampled by SB3's distribution
        with torch.no_grad():
            dist = policy.get_distribution(x)  # SB3 reuses one distribution object: sample before the next call
            return np.stack([dist.get_actions().numpy() for _ in range(draws)])

    def batched(batch_statistics: bool) -> np.ndarray:  # plain train mode: BatchNorm on the batch's statistics
        torch.nn.Module.train(policy, batch_statistics)
        return sample(images)

    policy.set_training_mode(False)
    single = np.concatenate([sample(img[None]) for img in images], axis=1)

    def chi_square_p(a: np.ndarray, b: np.ndarray) -> float:
        stat, dof = 0.0, 0
        for i in range(a.shape[1]):
            table = np.stack([np.bincount(a[:, i], minlength=5), np.bincount(b[:, i], minlength=5)])
            table = table[:, table.sum(0) > 0]
            if table.shape[1] > 1:
                s, _, d, _ = chi2_contingency(table)
                stat, dof = stat + s, dof + d
        return float(chi2.sf(stat, dof))

    assert single.var(0).mean() > 0  # stochastic, not a point mass
    assert chi_square_p(batched(False), single) > 0.01
    assert chi_square_p(batched(True), single) < 1e-3  # BatchNorm on batch statistics: a different policy


@pytest.mark.parametrize("collector", ["batched", "env"])
def test_rollout_actions_are_draws_of_the_masked_policy_not_its_argmax(make_trainer, collector):
    """The train-agent epoch samples (the main epoch takes the argmax): every stored rollout action
    lies in its sample's block and is a draw of the masked policy that collected it. The initial
    policy is near uniform over the block (SB3's 0.01-gain action head), so a draw is its argmax
    about one time in five, and the within-block counts follow the policy's probabilities."""
    trainer = make_trainer(**SHORT, method="rl", rl=FAST_PPO | {"collector": collector})  # 3 rollouts of 30
    method = rl_method(trainer)
    agent, buf = method.agent, method.agent.rollout_buffer
    rollouts, probs = record_rollouts(method), []
    record_then_update = agent.train

    def probs_then_update() -> None:  # the policy that collected the rollout: PPO has not updated it yet
        agent.policy.set_training_mode(False)
        with torch.no_grad():
            probs.append(label_probs(agent.policy, buf.observations, buf.action_masks).double().numpy())
        record_then_update()

    agent.train = probs_then_update  # type: ignore[method-assign]
    method.before_epoch(1)

    y = torch.cat([b.y for b in trainer.batches(1)]).numpy()
    actions = np.concatenate([r["actions"].reshape(-1) for r in rollouts])
    log_probs = np.concatenate([r["log_probs"].reshape(-1) for r in rollouts])
    p = np.concatenate(probs)
    n = len(actions)
    assert n == len(y) == len(p) == 90
    np.testing.assert_array_equal(
        np.concatenate([r["action_masks"] for r in rollouts]), block_mask(torch.as_tensor(y), 50, 5)
    )
    assert (actions // 5 == y).all()  # inside the block
    np.testing.assert_allclose(log_probs, np.log(p[np.arange(n), actions]), rtol=1e-4)  # stored log pi(a|s)
    assert p.max(1).max() < 0.25  # near uniform over 5: the argmax is no likelier than 1/4

    # argmax picks: a sum of Bernoulli(p_top) under sampling; n of n if the rollout took the argmax
    p_top = p.max(1)
    hits, expected, sd = (actions == p.argmax(1)).sum(), p_top.sum(), np.sqrt((p_top * (1 - p_top)).sum())
    assert abs(hits - expected) < 4 * sd, (
        f"{hits} of {n} rollout actions are the policy's argmax, expected {expected:.0f} +- {sd:.0f}"
    )
    # within-block counts against the policy's probabilities (Pearson, conservative for unequal p)
    rank, in_block = actions - 5 * y, p.reshape(n, 10, 5)[np.arange(n), y]
    observed, expected_counts = np.bincount(rank, minlength=5), in_block.sum(0)
    stat = ((observed - expected_counts) ** 2 / expected_counts).sum()
    assert chi2.sf(stat, 4) > 1e-3, (observed, expected_counts.round(1))


# ---------------------------------------------------------------- schedule
def test_train_agent_epoch_leaves_the_canonical_network_unchanged(make_trainer):
    trainer = make_trainer(method="rl", rl=FAST_PPO)
    method = rl_method(trainer)
    canonical = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    policy = {k: v.clone() for k, v in method.agent.policy.state_dict().items()}
    log = method.before_epoch(0)
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, canonical[k]), k
    assert trainer.optimizer.param_groups[0]["lr"] == trainer.cfg.lr
    assert any(not torch.equal(v, policy[k]) for k, v in method.agent.policy.state_dict().items())
    assert any(not torch.equal(v, canonical[k]) for k, v in method.env.sandbox.model.state_dict().items())
    assert {"rl/reward_mean", "rl/policy_entropy", "rl/ppo_value_loss", "rl/ppo_approx_kl"} <= set(log)
    assert all(math.isfinite(v) for v in log.values())


def test_authors_agent_errata_leave_a_near_uniform_policy(make_trainer):
    """docs/method.md §6.1/6.3: untrained default-init heads on softmax features keep every logit within
    +-0.125 (|w|, |b| <= 1/16 and the features sum to 1), even after PPO trained the encoder."""
    errata = dict(
        frozen_heads=True, scalar_value=True, softmax_features=True, softmax_reward=True, weight_scale_8w3=True
    )
    trainer = make_trainer(**SHORT, method="wa-rl", rl=FAST_PPO, errata=errata)
    method = rl_method(trainer)
    log = method.before_epoch(0)
    assert all(math.isfinite(v) for v in log.values())
    policy = method.agent.policy.eval()
    with torch.no_grad():
        logits = policy.action_net(policy.extract_features(next(trainer.batches(0)).x))
    assert logits.abs().max() <= 0.125


def test_too_small_an_epoch_for_one_rewarded_rollout_is_refused(make_trainer):
    with pytest.raises(ValueError, match="never see a reward"):
        rl_method(make_trainer(n_train=90, method="rl"))  # 90 steps < n_steps=100


@pytest.mark.parametrize("collector", ["batched", "env"])
@pytest.mark.parametrize("reset, erratum", [("epoch", False), ("batch", False), ("batch", True)])
def test_reset_modes_visit_the_epochs_batches(make_trainer, collector, reset, erratum):
    trainer = make_trainer(
        **SHORT,
        method="rl",
        rl=FAST_PPO | {"collector": collector, "reset": reset},
        errata={"reset_replays_first_batch": erratum},
    )
    method = rl_method(trainer)
    sandbox, visited, restores = method.env.sandbox, [], []
    step, restore = sandbox.step, sandbox.restore
    sandbox.step = lambda batch, actions: visited.append(batch.index.tolist()) or step(batch, actions)  # type: ignore[method-assign]
    sandbox.restore = lambda: restores.append(1) or restore()  # type: ignore[method-assign]
    method.before_epoch(4)
    order = [b.index.tolist() for b in trainer.batches(4)]
    assert visited == ([order[0]] * 3 if erratum else order)
    if collector == "batched":  # the env loop also restores when SB3 auto-resets into the next epoch
        assert len(restores) == (1 if reset == "epoch" else 3)


# ---------------------------------------------------------------- real runs
RL_COLUMNS = {
    "rl/reward_mean",
    "rl/policy_entropy",
    "rl/ppo_policy_gradient_loss",
    "rl/ppo_value_loss",
    "rl/ppo_entropy_loss",
    "rl/ppo_approx_kl",
    "rl/ppo_clip_fraction",
    "rl/ppo_explained_variance",
    "labels/entropy",
    "labels/in_block",
}


def cli_args(method: str, data_root, out) -> list[str]:
    return [
        "train",
        "--dataset",
        "cifar10",
        "--method",
        method,
        "--epochs",
        "2",
        "--train-size",
        "300",
        "--test-size",
        "100",
        "--width",
        "0.25",
        "--rl.n-epochs",
        "1",
        "--seed",
        "0",
        "--data-root",
        str(data_root),
        "--device",
        "cpu",
        "--progress",
        "false",
        "--out",
        str(out),
    ]


def check_run(out, columns: set[str]) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_acc_last15", "test_acc_best_val", "precision", "recall", "f1", "epochs"):
        assert math.isfinite(metrics[key])
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        assert columns <= set(row)
        assert all(math.isfinite(float(row[c])) for c in columns)
    return metrics


@pytest.mark.slow
def test_cli_wa_rl_runs_and_logs(data_root, tmp_path):
    main(cli_args("wa-rl", data_root, tmp_path / "wa"))
    check_run(tmp_path / "wa", RL_COLUMNS | {"rl/weight_mean", "rl/weight_std"})


@pytest.mark.slow
def test_cli_rl_runs_and_resume_gives_identical_metrics(data_root, tmp_path, kill_after_first_epoch):
    main(cli_args("rl", data_root, tmp_path / "a"))
    full = check_run(tmp_path / "a", RL_COLUMNS)

    cfg = config_from_args(build_parser().parse_args(cli_args("rl", data_root, tmp_path / "c")))
    kill_after_first_epoch(cfg)
    assert not (cfg.out / "metrics.json").exists()
    train(cfg, resume=True)
    resumed = check_run(cfg.out, RL_COLUMNS)
    strip = lambda m: {k: v for k, v in m.items() if k != "config"}  # noqa: E731
    assert strip(resumed) == strip(full)
