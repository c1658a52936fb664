"""Registry of methods: a name maps to `module:Class`. Adding a method = one file + one line."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlaux.methods.base import AuxMethod, MethodContext

METHODS: dict[str, str] = {
    "single": "rlaux.methods.baselines:SingleTask",
    "human": "rlaux.methods.baselines:HumanLabels",
    "random": "rlaux.methods.baselines:RandomLabels",
    "maxl": "rlaux.methods.maxl:MAXL",
    "wa-maxl": "rlaux.methods.maxl:MAXL",
    "rl": "rlaux.methods.rl.method:RLAux",
    "wa-rl": "rlaux.methods.rl.method:RLAux",
}


def make_method(name: str, ctx: MethodContext) -> AuxMethod:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)(ctx)
