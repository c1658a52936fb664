"""The report's spec (report.yaml beside params.yaml): claims, figures, named arms and prose templates as data.

Read once and validated before any table or figure is made: a claim key, dataset or template field the spec does not
know is an error that names it and the fix. Torch-free, so a bad spec fails in well under a second.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlaux.config import DATASET_FACTS
from rlaux.errors import UserError

REPORT_YAML = Path(__file__).resolve().parents[2] / "report.yaml"
"""The spec of this checkout (beside params.yaml; rlaux is installed editable, so it is always there). A test points it
at another file with monkeypatch."""

PROSE_FIELDS: dict[str, frozenset[str]] = {
    "control_holds": frozenset({"dataset", "difference"}),
    "control_fails": frozenset({"dataset", "difference", "search"}),
    "no_control": frozenset(),
    "answer_own_control": frozenset({"verdict", "verb", "dataset", "difference", "still"}),
    "answer_no_control": frozenset({"still"}),
    "answer_search_holds": frozenset(
        {"ordinal", "cell", "task_minus_baseline", "baseline_p", "task_minus_step", "step_p", "confirmed"}
    ),
    "answer_search_confirmed": frozenset(
        {"ordinal", "cell", "task_minus_baseline", "baseline_p", "task_minus_step", "step_p", "confirmed"}
    ),
    "answer_search_fails": frozenset({"cells", "cell", "differences", "still"}),
    "answer_retest": frozenset({"seeds", "where", "holding", "tested", "verb", "difference", "p_holm", "agreement"}),
    "answer_retest_agreement": frozenset({"position", "agreement", "ci95", "chance"}),
    "answer_oracle": frozenset({"listed"}),
    "answer_chain": frozenset(
        {"seeds", "holding", "tested", "verb", "difference", "p_holm", "verb_sample", "difference_sample", "p_sample"}
        | {"agreement"}
    ),
    "answer_chain_agreement": frozenset({"position", "agreement", "ci95", "chance"}),
    "answer_study": frozenset({"claims"}),
    "search_held": frozenset({"cell", "difference", "p"}),
    "search_held_confirmed": frozenset({"cell", "difference", "p", "fresh_difference", "fresh_p_holm"}),
    "search_none": frozenset({"cells", "compute", "cell", "difference", "p"}),
    "search_trend_flat": frozenset({"slope", "slope_low", "slope_high", "paper"}),
    "search_trend_reaches": frozenset({"slope", "slope_low", "slope_high", "paper", "paper_gain", "compute"}),
    "claims_count": frozenset({"tested", "holds", "reversed", "inconclusive", "power"}),
    "retest": frozenset({"where", "verb", "difference", "holding", "tested", "other_metric", "agreement"}),
    "claims_all_inconclusive": frozenset({"n", "profile", "aside"}),
    "claims_profile": frozenset({"profile", "n", "holds", "reversed", "inconclusive", "aside"}),
    "why_no_agent": frozenset(),
    "why_no_diagnostics": frozenset(),
    "why_placebo": frozenset({"verb", "differences"}),
    "why_signal": frozenset({"how", "share"}),
    "why_nothing": frozenset(),
    "so_blind": frozenset({"claims"}),
    "so_fails": frozenset({"claims"}),
    "so_holds": frozenset({"claims"}),
    "so_elsewhere": frozenset({"claims"}),
}
"""Each sentence template and the fields the report fills it with (from the tables, by name)."""
NAMED_CLAIMS = ("positive_control", "placebo")
"""The claims the answer reads first, by key: the positive control and the placebo."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClaimSpec(_Strict):
    text: str
    better: str
    """The experiment expected to be higher ("{p}": the dataset's prefix)."""
    worse: str
    """An id, "{control}" (the dataset's λ-alone control) or "best:<prefix>,..." (chosen on validation)."""
    margin: float = 0.0
    """better + margin > worse is tested."""


class DatasetSpec(_Strict):
    claims: list[str]
    control: str | None = None
    shown: Literal["always", "trained"] = "always"
    """always: listed as not run where a profile has no runs of it; trained: only where a profile trains it."""


class FigureSpec(_Strict):
    file: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    dataset: str
    bars: dict[str, str]
    kind: Literal["accuracy", "curves", "prf"] = "accuracy"
    paper_figure: int | None = None
    """The paper's figure number: its values are marked on ours."""
    note: str = ""


class RandomizedTask(_Strict):
    ours: tuple[str, str]
    paper: tuple[str, str]


class ChainArms(_Strict):
    """The registered chain's claims the answer quotes (each a `better > worse` of params.yaml's chain_claims)."""

    published: tuple[str, str]
    """RL-AUX as published against its placebo."""
    sample: tuple[str, str]
    """RL-AUX with per-sample credit against the placebo."""
    agent: str
    """The arm whose fine agreement the answer quotes (the report lists every RL arm's)."""


class Arms(_Strict):
    agreement: dict[str, str]
    paper_control: tuple[str, str]
    randomized_task: RandomizedTask
    chain: ChainArms


class ReportSpec(_Strict):
    claims: dict[str, ClaimSpec]
    datasets: dict[str, DatasetSpec]
    figures: list[FigureSpec]
    arms: Arms
    prose: dict[str, str]

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, v: dict[str, DatasetSpec]) -> dict[str, DatasetSpec]:
        unknown = sorted(set(v) - set(DATASET_FACTS))
        if unknown:
            raise ValueError(f"unknown dataset(s) {unknown}; known: {', '.join(DATASET_FACTS)} (rlaux.config)")
        return v

    @field_validator("prose")
    @classmethod
    def _templates(cls, v: dict[str, str]) -> dict[str, str]:
        if missing := sorted(set(PROSE_FIELDS) - set(v)):
            raise ValueError(f"prose lacks the template(s) {missing}")
        for name, text in v.items():
            if name not in PROSE_FIELDS:
                raise ValueError(f"unknown prose template {name!r}; known: {', '.join(PROSE_FIELDS)}")
            used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
            if bad := sorted(used - PROSE_FIELDS[name]):
                allowed = ", ".join(sorted(PROSE_FIELDS[name])) or "none"
                raise ValueError(f"prose.{name} uses unknown field(s) {bad}; its fields: {allowed}")
        return v

    @model_validator(mode="after")
    def _references(self) -> ReportSpec:
        if missing := [k for k in NAMED_CLAIMS if k not in self.claims]:
            raise ValueError(f"claims lacks {missing}: the answer reads them by these keys")
        for name, ds in self.datasets.items():
            if bad := [c for c in ds.claims if c not in self.claims]:
                raise ValueError(
                    f"datasets.{name}.claims names unknown claim(s) {bad}; known: {', '.join(self.claims)}"
                )
            needs = [c for c in ds.claims if "{control}" in self.claims[c].worse]
            if needs and ds.control is None:
                raise ValueError(f"datasets.{name} tests {needs}, which need its `control`; add one")
        for fig in self.figures:
            if fig.dataset not in self.datasets:
                raise ValueError(f"figure {fig.file} is of dataset {fig.dataset!r}, which has no entry under datasets")
        files = [f.file for f in self.figures]
        if dupes := sorted({f for f in files if files.count(f) > 1}):
            raise ValueError(f"figure file name(s) {dupes} appear twice")
        return self

    def claim_arms(self, dataset: str, key: str) -> tuple[str, str]:
        """A claim's (better, worse) for a dataset: "{p}" and "{control}" filled in."""
        c, prefix = self.claims[key], DATASET_FACTS[dataset].prefix
        return c.better.format(p=prefix), c.worse.format(p=prefix, control=self.datasets[dataset].control)

    def check(self, experiments: Iterable[str]) -> None:
        """UserError naming every experiment id (or `best:` prefix) the spec names that `experiments` lacks: a typo
        would otherwise show a claim or bar as 'not run in this profile' for ever. Held against the committed
        params.yaml by the tests, not by the stages: a trimmed params.yaml (a test's tiny project) names fewer."""
        known = set(experiments)
        named = {arm for ds, d in self.datasets.items() for key in d.claims for arm in self.claim_arms(ds, key)}
        named |= {e for f in self.figures for e in f.bars} | set(self.arms.agreement) | set(self.arms.paper_control)
        named |= set(self.arms.randomized_task.ours) | set(self.arms.randomized_task.paper)
        named |= {*self.arms.chain.published, *self.arms.chain.sample, self.arms.chain.agent}
        missing = sorted(
            p
            for arm in named
            for p in (arm[5:].split(",") if arm.startswith("best:") else [arm])
            if not (any(e.startswith(p) for e in known) if arm.startswith("best:") else p in known)
        )
        if missing:
            raise UserError(
                f"report.yaml names experiment(s) {missing} that params.yaml's `experiments` lacks; "
                "fix the id in report.yaml or add the experiment to params.yaml"
            )

    def sentence(self, name: str, **fields: str) -> str:
        """A prose template filled by name; the fields must be exactly the template's (PROSE_FIELDS)."""
        if set(fields) != PROSE_FIELDS[name]:
            raise TypeError(f"prose.{name} takes {sorted(PROSE_FIELDS[name])}, got {sorted(fields)}")
        return self.prose[name].format(**fields)

    def shown(self, dataset: str, trained: set[str]) -> bool:
        return self.datasets[dataset].shown == "always" or dataset in trained


def parse(text: str, where: str = "report.yaml") -> ReportSpec:
    try:
        return ReportSpec.model_validate(yaml.safe_load(text))
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors())
        raise UserError(f"{where} is invalid: {problems}. Fix it there (see its comments).") from None


def load() -> ReportSpec:
    """The validated spec at REPORT_YAML (read once per path); UserError naming the bad entry when invalid or missing."""
    return _load(REPORT_YAML)


@cache
def _load(path: Path) -> ReportSpec:
    if not path.is_file():
        raise UserError(f"{path} is missing: the report's spec lives beside params.yaml; restore it with git")
    return parse(path.read_text(encoding="utf-8"), str(path))
