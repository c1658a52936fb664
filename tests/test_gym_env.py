"""`import rlaux` registers rlaux/AuxTask-v0; gym.make builds it from plain keywords; the README's SB3 example runs."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rlaux
from rlaux.errors import ConfigError
from rlaux.methods.rl import ENV_ID

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_env(monkeypatch, data_root):
    monkeypatch.setenv("RLAUX_DATA", str(data_root))


def test_import_rlaux_registers_the_env_without_loading_torch():
    code = (
        "import sys, gymnasium, rlaux; assert 'torch' not in sys.modules; print(gymnasium.spec('rlaux/AuxTask-v0').id)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )
    assert out.stdout.strip() == ENV_ID == rlaux.ENV_ID


def test_gym_make_from_keywords_passes_both_checkers(data_env):
    env = gym.make(ENV_ID, train_size=200, test_size=100, width=0.125, seed=1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 32, 32) and obs.dtype == np.float32
    assert env.unwrapped.trainer.cfg.dataset == "cifar10" and env.action_space == gym.spaces.Discrete(50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)


def test_gym_make_takes_nested_keys_and_the_weight_aware_method(data_env):
    env = gym.make(ENV_ID, train_size=200, method="wa-rl", rl={"weight_bins": 5}).unwrapped
    assert env.action_space == gym.spaces.MultiDiscrete([50, 5])


@pytest.mark.parametrize(
    "kwargs, name",
    [({"trian_size": 200}, "trian_size"), ({"method": "single"}, "method"), ({"train_size": -1}, "train_size")],
)
def test_gym_make_rejects_bad_keywords_by_name(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        gym.make(ENV_ID, **kwargs)


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- sb3-example -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "README lost its SB3 example"
    return match.group(1)


def test_readme_sb3_example_runs(data_env):
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    assert namespace["agent"].num_timesteps >= 200
    assert namespace["env"].unwrapped.sandbox.entropy_term == "policy"  # an attached policy: the paper's reward


def test_a_random_agent_steps_the_env_for_several_training_points(data_env):
    """No policy attached (any agent that is not an SB3 policy): every training point still has a
    finite reward, whose entropy term is that of the labels the agent chose (documented route)."""
    env = gym.make(ENV_ID, train_size=300, test_size=100, width=0.0625, seed=0)  # 270 images: 100 + 100 + 70
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    rewards, ends = [], 0
    for _ in range(2 * 270):  # two episodes (epochs) of three training points each
        mask = env.unwrapped.action_masks()
        action = env.action_space.sample(mask=mask.astype(np.int8))
        assert mask[action]  # a label inside the image's primary block
        obs, reward, terminated, truncated, _ = env.step(action)
        assert obs.shape == (3, 32, 32) and not truncated
        if reward != 0.0:
            rewards.append(reward)
            assert env.unwrapped.sandbox.entropy_term == "chosen-labels"
        if terminated:
            ends += 1
            obs, _ = env.reset()
    assert ends == 2 and len(rewards) == 6 and all(np.isfinite(rewards)), rewards
    assert len(set(rewards)) == 6  # each point trains the copy on other labels and scores another reward batch
