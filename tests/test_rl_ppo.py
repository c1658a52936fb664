"""rlaux's PPO update and masked distributions are sb3-contrib's, bit for bit (issue 19).

`ppo.ppo_update` keeps `MaskablePPO.train`'s statistics on the device and `ppo.MaskedCategorical` masks
with Python scalars; `DeviceRolloutBuffer` computes GAE on the device. None of that may change a number:
one full epoch (agent epoch with PPO updates, then the main epoch) gives the same history row, the same
agent (weights and Adam state) and the same main network as sb3-contrib's own code run in its place.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib.common.maskable.distributions import make_masked_proba_distribution

from rlaux.config import build_config
from rlaux.methods.rl.agent import PPO_LOG_KEYS
from rlaux.methods.rl.method import RLAux
from rlaux.methods.rl.ppo import masked_distribution
from rlaux.methods.rl.sb3_reference import use_sb3_contrib
from rlaux.training import build_run, train_epoch

# 270 training images: 3 rollouts of 90 steps, each updated in 2 passes of 3 minibatches of 30
PPO = {"n_steps": 90, "ppo_batch_size": 30, "n_epochs": 2, "feature_dim": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("space", [spaces.Discrete(50), spaces.MultiDiscrete([50, 21])], ids=["rl", "wa-rl"])
def test_masked_distribution_is_sb3_contribs_bit_for_bit(space):
    torch.manual_seed(0)
    width = int(space.n) if isinstance(space, spaces.Discrete) else int(sum(space.nvec))
    logits = torch.randn(64, width) * 3
    masks = torch.rand(64, width) < 0.3
    masks[:, 0] = masks[:, 50 % width] = True  # every part keeps an allowed action
    actions = torch.as_tensor(np.stack([space.sample() for _ in range(64)])).long()
    ours, theirs = masked_distribution(space), make_masked_proba_distribution(space)
    for dist in (ours, theirs):
        dist.proba_distribution(logits)
        dist.apply_masking(masks)
    assert torch.equal(ours.log_prob(actions), theirs.log_prob(actions))
    assert torch.equal(ours.entropy(), theirs.entropy())
    assert torch.equal(ours.mode(), theirs.mode())
    for a, b in zip(
        getattr(ours, "distributions", [getattr(ours, "distribution", None)]),
        getattr(theirs, "distributions", [getattr(theirs, "distribution", None)]),
        strict=True,
    ):
        assert torch.equal(a.logits, b.logits) and torch.equal(a.probs, b.probs)
    ours.apply_masking(None)  # unmasking restores the raw logits, as sb3-contrib's does
    theirs.apply_masking(None)
    assert torch.equal(ours.entropy(), theirs.entropy())


def one_epoch(data_root, method: str, errata: dict, sb3: bool) -> tuple[dict, dict, dict, dict]:
    cfg = build_config(
        dict(dataset="cifar10", method=method, train_size=300, test_size=100, width=0.0625, seed=0),
        dict(data_root=str(data_root), device="cpu", progress=False, rl=PPO, errata=errata),
    )
    trainer, aux = build_run(cfg)
    assert isinstance(aux, RLAux)
    if sb3:
        use_sb3_contrib(aux.agent)
    row = train_epoch(trainer, aux, 0)
    policy = aux.agent.policy
    return row, policy.state_dict(), policy.optimizer.state_dict()["state"], trainer.model.state_dict()


@pytest.mark.parametrize(
    "method, errata",
    [("rl", {}), ("wa-rl", {}), ("rl", {"scalar_value": True, "frozen_heads": True})],
    ids=["rl", "wa-rl", "rl-scalar-value-frozen-heads"],
)
def test_one_epoch_is_bit_identical_to_sb3_contribs_update(data_root, method, errata):
    (row, policy, adam, model), (row_sb3, policy_sb3, adam_sb3, model_sb3) = (
        one_epoch(data_root, method, errata, sb3) for sb3 in (False, True)
    )
    assert row == row_sb3  # every float, PPO's logged statistics included
    assert {k for k in row if k.startswith("rl/ppo_")} == {f"rl/ppo_{k}" for k in PPO_LOG_KEYS}
    for ours, theirs in ((policy, policy_sb3), (model, model_sb3)):
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), [
            k for k in ours if not torch.equal(ours[k], theirs[k])
        ]
    for i, state in adam.items():
        assert all(torch.equal(v, adam_sb3[i][k]) for k, v in state.items()), i
