"""The package's shape: no import circle anywhere, type-only imports included (the layers are lint-imports'), and
RL-AUX's epoch in one module a reader follows top to bottom."""

from __future__ import annotations

from pathlib import Path

import pytest

import rlaux

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")


def cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while (top := stack.pop()) != module:
                component.append(top)
            if component:
                found.append(sorted([module, *component]))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_in_rlaux():
    graph = grimp.build_graph("rlaux", exclude_type_checking_imports=False)
    assert cycles(graph) == []


def test_the_cycle_finder_sees_a_circle():
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_rl_aux_reads_in_one_module_of_a_few_hundred_lines():
    """The agent epoch (label -> train the copy -> reward -> credit -> PPO) and the credit designs live in
    `methods/rl/method.py`; the reward designs in `reward.py`. A module past 400 lines is a sign they spread again."""
    rl = Path(rlaux.__file__).parent / "methods" / "rl"
    method = (rl / "method.py").read_text()
    assert len(method.splitlines()) <= 400
    epoch = method[method.index("def agent_epoch") : method.index("def ppo_update")]
    steps = ["# a. label", "self.policy(obs", "self.sandbox.step(", "self.credit.assign(", "self.ppo_update("]
    places = [epoch.index(step) for step in steps[:-1]] + [epoch.rindex(steps[-1])]
    assert places == sorted(places), "the agent epoch no longer reads in the paper's order"
