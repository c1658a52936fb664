"""RL-AUX and WA-RL (docs/method.md §5): a PPO agent labels each training image for an auxiliary task.

`actions` (what an action means), `env` (the Gymnasium env), `registration` (`make_env`, the
entry point of `rlaux/AuxTask-v0`, which `import rlaux` registers), `agent` (SB3 PPO on a
VGG16 encoder), `collector` (one train-agent epoch), `method` (the `AuxMethod` the training
loop calls).
"""

from rlaux.methods.rl.env import ENV_ID, AuxTaskEnv

__all__ = ["ENV_ID", "AuxTaskEnv"]
