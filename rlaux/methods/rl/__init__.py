"""RL-AUX and WA-RL (SPEC §5): a PPO agent labels each training image for an auxiliary task.

`actions` (what an action means), `env` (the Gymnasium env, registered as
`rlaux/AuxTask-v0`), `agent` (SB3 PPO on a VGG16 encoder), `collector` (one train-agent
epoch), `method` (the `AuxMethod` the training loop calls).
"""

import gymnasium

from rlaux.methods.rl.env import ENV_ID, AuxTaskEnv

gymnasium.register(id=ENV_ID, entry_point="rlaux.methods.rl.env:AuxTaskEnv")

__all__ = ["ENV_ID", "AuxTaskEnv"]
