"""RL-AUX and WA-RL (docs/method.md §5): a PPO agent labels each training image for an auxiliary task.

`method` reads top to bottom: the agent's epoch in the paper's order (label, train the network, reward,
credit, PPO) and the `Credit` designs. Beside it: `reward` (the disposable copy and the `Reward`
designs), `env` (the Gymnasium env), `actions` (what an action means), `agent` (SB3 PPO on a VGG16
encoder), `registration` (`make_env`, the entry point of `rlaux/AuxTask-v0`, which `import rlaux`
registers) and `diagnostics` (what the agent learned).
"""

from rlaux.methods.rl.env import ENV_ID, AuxTaskEnv

__all__ = ["ENV_ID", "AuxTaskEnv"]
