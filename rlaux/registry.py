"""The methods by name, with what the rest of the suite needs to know of each, readable without importing them.

Config validation, the errata's scope and the report read this table; only `rlaux.methods.make_method`
imports a method's module. Adding a method = one file + one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MethodInfo:
    entry: str
    """`module:Class` of its `AuxMethod`."""
    family: Literal["baseline", "maxl", "rl"]
    """Which method options it reads: the MAXL family reads `maxl.*`, the RL family `rl.*` and the errata."""
    weight_aware: bool = False
    """It learns a per-sample weight on the auxiliary loss instead of using λ."""


METHODS: dict[str, MethodInfo] = {
    "single": MethodInfo("rlaux.methods.baselines:SingleTask", "baseline"),
    "human": MethodInfo("rlaux.methods.baselines:HumanLabels", "baseline"),
    "random": MethodInfo("rlaux.methods.baselines:RandomLabels", "baseline"),
    "maxl": MethodInfo("rlaux.methods.maxl:MAXL", "maxl"),
    "wa-maxl": MethodInfo("rlaux.methods.maxl:MAXL", "maxl", weight_aware=True),
    "rl": MethodInfo("rlaux.methods.rl.method:RLAux", "rl"),
    "wa-rl": MethodInfo("rlaux.methods.rl.method:RLAux", "rl", weight_aware=True),
}
MAXL_METHODS = tuple(name for name, m in METHODS.items() if m.family == "maxl")
RL_METHODS = tuple(name for name, m in METHODS.items() if m.family == "rl")
LABEL_METHODS = MAXL_METHODS + RL_METHODS
"""The methods that generate their auxiliary labels (the report's label diagnostics)."""
