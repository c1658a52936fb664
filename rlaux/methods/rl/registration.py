"""`gymnasium.make("rlaux/AuxTask-v0", **config_keys)`: the RL-AUX environment from plain keywords.

`import rlaux` registers the id with this module's `make_env` as a string entry point.
Keywords are `TrainConfig` keys (nested ones as dicts, e.g. `rl={"target": "in-block"}`),
layered over a small CIFAR-10 setting; `data_root` defaults to `$RLAUX_DATA` (else ./data)
as everywhere in rlaux. `gym.make(ENV_ID, trainer=trainer)` wraps an existing `Trainer`
instead (what rlaux's own RL method does with `AuxTaskEnv(trainer)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlaux import ENV_ID
from rlaux.config import build_config
from rlaux.errors import ConfigError
from rlaux.registry import RL_METHODS

if TYPE_CHECKING:
    from rlaux.methods.rl.env import AuxTaskEnv
    from rlaux.trainer import Trainer

# A small setting that builds in seconds on a CPU: 1000 CIFAR-10 images, a 1/8-width VGG16.
ENV_DEFAULTS: dict[str, Any] = {
    "dataset": "cifar10",
    "method": "rl",
    "train_size": 1000,
    "width": 0.125,
    "device": "cpu",
    "progress": False,
}

__all__ = ["ENV_DEFAULTS", "ENV_ID", "make_env"]


def make_env(trainer: Trainer | None = None, render_mode: str | None = None, **config: Any) -> AuxTaskEnv:
    """The environment for a `Trainer`, or for one built from `ENV_DEFAULTS` updated with `config`."""
    from rlaux.methods.rl.env import AuxTaskEnv
    from rlaux.trainer import Trainer

    if render_mode is not None:
        raise ConfigError(f"{ENV_ID} does not render; got render_mode={render_mode!r}, leave it unset")
    if trainer is not None:
        if config:
            raise ConfigError(f"{ENV_ID}: pass either trainer= or config keys, not both (got {', '.join(config)})")
        return AuxTaskEnv(trainer)
    cfg = build_config(ENV_DEFAULTS, config, sources=("", f"gymnasium.make({ENV_ID!r}) keywords"))
    if cfg.method not in RL_METHODS:
        raise ConfigError(f"{ENV_ID}: method must be 'rl' or 'wa-rl' (the agent labels images), not {cfg.method!r}")
    return AuxTaskEnv(Trainer.build(cfg))
