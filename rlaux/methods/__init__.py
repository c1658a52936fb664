"""Methods by name (`rlaux.registry`), imported only when a run makes one."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from rlaux.registry import METHODS

if TYPE_CHECKING:
    from rlaux.methods.base import AuxMethod, MethodContext


def make_method(name: str, ctx: MethodContext) -> AuxMethod:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    module, cls = METHODS[name].entry.split(":")
    return getattr(importlib.import_module(module), cls)(ctx)
