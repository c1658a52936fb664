"""rlaux: a reproducibility suite for RL-AUX and its baselines on one training loop.

Importing rlaux registers the Gymnasium environment `rlaux/AuxTask-v0` (a string entry
point: torch and the trainer load only when the environment is made), so

    import gymnasium as gym, rlaux
    env = gym.make("rlaux/AuxTask-v0", train_size=500)

builds a working environment from plain config keys (`rlaux.methods.rl.registration`).
"""

ENV_ID = "rlaux/AuxTask-v0"


def _register() -> None:
    try:
        import gymnasium
    except ImportError:  # the environment needs gymnasium; the CLI and report code do not
        return
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="rlaux.methods.rl.registration:make_env")


_register()
