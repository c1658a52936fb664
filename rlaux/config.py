"""One typed, validated configuration for every run.

The CLI (`rlaux train --flag`), YAML files (`--config`) and `params.yaml` all end up
as a `TrainConfig`. Validation happens here, before any data is loaded or any file is
written, and every error names the offending key and the values it accepts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlaux.errors import ConfigError, one_line
from rlaux.registry import MAXL_METHODS, METHODS, RL_METHODS


@dataclass(frozen=True)
class DatasetFacts:
    """What the config, the claims and the report need to know of a dataset (its loader is in `rlaux.data`)."""

    num_classes: int
    """Primary classes C."""
    title: str
    """Its name in the report."""
    prefix: str
    """Experiment ids of params.yaml start with it ("c10-rl"): the claims find their arms by it."""
    full_train: int
    """Images in the official training split: a run on a tenth of it or less is called a slice."""
    human_task: bool = False
    """It has human auxiliary labels (the `human` method and its claims)."""
    human_psi: int = 5
    """Human auxiliary classes per primary class (the `human` method needs psi equal to it)."""


DATASET_FACTS: dict[str, DatasetFacts] = {
    "cifar100-20": DatasetFacts(20, "CIFAR-100-20", "c100", 50_000, human_task=True),
    "cifar10": DatasetFacts(10, "CIFAR-10", "c10", 50_000),
    "svhn": DatasetFacts(10, "SVHN", "svhn", 73_257),
    # the suite's control, not one of the paper's datasets: CIFAR-10's classes in 5 pairs of unrelated classes
    # (rlaux.data.CIFAR10_PAIRS) as the primary task, the 10 classes as the human auxiliary task (psi = 2)
    "cifar10-pairs": DatasetFacts(5, "CIFAR-10 pairs (control)", "pairs", 50_000, human_task=True, human_psi=2),
}
"""Adding a dataset: a row here, its loader in `rlaux.data.DATASETS`, its experiments in params.yaml, and its entry in
report.yaml (the claims its report tests, its figures; `rlaux.report.spec`)."""


def _known_dataset(name: str) -> str:
    if name not in DATASET_FACTS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASET_FACTS)}")
    return name


DatasetName = Annotated[str, AfterValidator(_known_dataset)]
DeviceName = Literal["auto", "cpu", "cuda"]
DATA_ENV_VAR = "RLAUX_DATA"


LOCAL: dict[str, Any] = {"identity": "local"}
"""A field's identity class (read by `rlaux.run_identity`), declared beside the field: machine-local, or a setting
that moves no number (tested), so it never makes another run. A field without a class makes another run."""
EXTENSIBLE: dict[str, Any] = {"identity": "extensible"}
"""A killed run may be resumed with a larger value (extending it); a finished run of another value is another run."""
ADDED_LATER: dict[str, Any] = {"identity": "added later"}
"""A field added after runs were committed: at its default it is left out of a run's identity, so a run trained
before it existed is the same run as one that names the default. Safe: a default that moved a number would move a
fingerprint (tests/test_results_version.py), which forces a new results version."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


class Errata(_Strict):
    """As-run behaviours of the authors' code (docs/method.md §6). All default off = the paper's text."""

    frozen_heads: bool = False
    """§6.1: PPO action/value heads are never trained (replaced after the optimiser was built)."""
    scalar_value: bool = False
    """§6.2: the value head averages over the minibatch, so the critic is one scalar."""
    softmax_features: bool = False
    """§6.3: agent features are the softmax of a VGG16 head (bounded), not a free embedding."""
    broadcast_targets: bool = False
    """§6.4: CIFAR-100-20 target broadcast bug (a sample's target built from batch positions)."""
    softmax_reward: bool = False
    """§6.5 / §6.12: the reward's loss is cross-entropy on softmax outputs (double softmax), not the focal
    primary loss used in training."""
    weight_scale_8w3: bool = False
    """§6.6: WA-RL factor 2^(8w-3) instead of the paper's 2^(10w-5)."""
    batch_mean_weights: bool = False
    """§6.7 / §4: WA-MAXL loss broadcast, auxiliary loss = mean(loss) * mean(factor)."""
    reset_replays_first_batch: bool = False
    """§6.8: the per-batch reset ablation re-seeds the loader, so the agent only sees batch 0."""
    unmasked_soft_targets: bool = False
    """§6.10: the label action is never masked to the sample's block and the target is the masked
    softmax of its one-hot (0.405 on an in-block pick, uniform over the block for an out-of-block one)."""
    target_entropy_reward: bool = False
    """§6.11: the reward's entropy term is H(p_bar) of the labelled training batch's targets, not of the
    policy's mean distribution over the evaluation batch."""
    ppo_train_mode_batchnorm: bool = False
    """Found here, not in the authors' errata (docs/method.md §6): SB3 collects rollouts with the agent's
    BatchNorm on running statistics but evaluates the PPO update on batch statistics, so the importance ratio
    measures BatchNorm, not the policy (the authors ran SB3 this way on a VGG16 with BatchNorm). Off: both on
    running statistics."""


class MaxlConfig(_Strict):
    """MAXL / WA-MAXL label network and meta step (docs/method.md §4)."""

    order: Literal[1, 2] = 2
    """2: true second-order look-ahead (paper); 1: MAXL's finite-difference approximation,
    which in effect drops the entropy term from the label network's update."""
    lr: float = Field(1e-3, gt=0)
    """Label network's SGD learning rate (its StepLR shares the main net's lr_step / lr_gamma)."""
    weight_decay: float = Field(5e-4, ge=0)
    """Label network's SGD weight decay."""
    entropy_weight: float = Field(0.2, ge=0)
    """Weight of the batch entropy H(p_bar) that the label network maximises (second order only)."""
    lookahead_lambda_one: bool = False
    """As in the authors' λ ablation: the look-ahead uses λ = 1 whatever `lam` is."""
    label_init: Literal["xavier_normal", "xavier_uniform"] = "xavier_normal"
    """Label network init: xavier_normal as in MAXL's code, which the authors ran (docs/method.md §4);
    xavier_uniform is the main network's."""


class RLConfig(_Strict):
    """RL-AUX / WA-RL agent and environment (docs/method.md §5)."""

    reset: Literal["epoch", "batch"] = "epoch"
    """Episode = one epoch (paper), or one batch from the canonical network (reset ablation, paper A.2)."""
    target: Literal["masked", "in-block"] = "masked"
    """masked (paper, docs/method.md §5, §6.10): action = auxiliary class in 0..K-1, the policy masked to the
    sample's primary block (sb3-contrib MaskablePPO), hard target = the chosen class;
    in-block: action = subclass rank in 0..psi-1, hard target psi*y + action."""
    collector: Literal["batched", "env"] = "batched"
    """batched: one policy forward per batch; env: the literal one-image-per-step PPO.learn loop."""
    reward_batch: int = Field(256, gt=0)
    """B_R: training images drawn for each reward."""
    entropy_weight: float = Field(0.2, ge=0)
    """Weight of the entropy bonus H(p_bar) in the reward (p_bar: the policy's mean label distribution
    over the reward batch)."""
    weight_bins: int = Field(21, ge=2)
    """WA-RL: bin b means w = b / (bins - 1), factor 2^(10w - 5)."""
    ppo_lr: float = Field(3e-4, gt=0)
    """PPO's Adam learning rate."""
    ent_coef: float = Field(0.01, ge=0)
    """PPO's entropy bonus coefficient (exploration over actions)."""
    n_steps: int | None = Field(None, gt=0)
    """PPO rollout length; None = the paper's (79 for CIFAR-100-20, 100 otherwise)."""
    ppo_batch_size: int = Field(100, gt=0)
    """PPO minibatch size."""
    n_epochs: int = Field(10, gt=0)
    """PPO epochs over each rollout."""
    feature_dim: int = Field(256, gt=0)
    """Width of the agent's features, the input of its action and value heads."""
    placebo: bool = False
    """Control: the sandbox trains on in-block labels drawn uniformly instead of the agent's actions, so the
    reward no longer depends on them; PPO, passes, masks and the argmax labels of the main network unchanged."""
    diagnostics: bool = Field(True, json_schema_extra=LOCAL)
    """Log what the agent learned each epoch on a fixed probe (policy entropy, KL from the initial policy,
    sampled-label entropy, the reward's variance due to labels vs evaluation batch); never changes the run."""
    reward: Literal["paper", "oracle"] = Field("paper", json_schema_extra=ADDED_LATER)
    """paper: -loss of the copy after one step on the chosen labels, + entropy bonus (docs/method.md §5). oracle: a
    CONTROL, not a method: the share of the batch's chosen labels that equal the human fine labels (datasets with a
    human task), delivered as the paper's reward is (one scalar per batch, on its last action), no copy trained: can
    this agent learn from a reward that does carry the answer?"""
    credit: Literal["paper", "batch", "sample"] = Field("paper", json_schema_extra=ADDED_LATER)
    """How a batch's one reward reaches its actions. paper: on the batch's last action only, spread back by GAE over
    rollouts of rl.n_steps, advantages normalised per minibatch (docs/method.md §5). batch (issue 26): rollouts
    aligned to the batches (n_steps = batch_size), every action of a batch gets the batch's reward as its return and
    reward - the critic's mean value over the batch (a baseline across batches) as its advantage, not normalised.
    sample (issue 26): rollouts aligned to the batches, each action its own reward, the rewards adding up to the
    batch's (paired) reward to first order: its first-order influence on the reward batch's loss through the copy's
    SGD step (`rlaux.methods.rl.reward.first_order_influence`), or with rl.reward oracle its own agreement; the return
    is that reward, the advantage it minus the batch's mean reward, normalised per PPO minibatch (the whole batch at
    ppo_batch_size = batch_size). The entropy bonus is shared equally, so that baseline cancels it: under sample
    credit the bonus reaches the critic's targets, not the policy's advantages."""
    reward_pairing: bool = Field(False, json_schema_extra=ADDED_LATER)
    """The reward as a paired difference: the copy's loss on the reward batch before its step minus its loss on
    the same batch after it (+ the entropy bonus), so the batch's own difficulty cancels (issue 26). Off: the
    paper's -loss after the step."""
    train_agent: bool = Field(True, json_schema_extra=ADDED_LATER)
    """False: a CONTROL, the agent is never trained: no train-agent epoch (no rollouts, sandbox steps, rewards or PPO
    updates), so the main network's labels come from the initial policy, as in the authors' "Randomized Task"
    (`skip_rl=True`, docs/method.md §7): what labels from an agent that learned nothing give."""
    oracle_noise: float = Field(0.0, ge=0, json_schema_extra=ADDED_LATER)
    """rl.reward oracle: standard deviation of Gaussian noise added to each batch's agreement (seeded), so a run
    can set the oracle's share of the reward's variance."""


class QueueConfig(_Strict):
    """How `rlaux dispatch` places runs on GPUs (Ray sets each run's CUDA_VISIBLE_DEVICES); never changes a run."""

    gpus: int = Field(0, ge=0)
    """GPUs a Ray that `rlaux dispatch` starts on this machine declares (0: the GPUs Ray detects)."""
    runs_per_gpu: int = Field(1, gt=0)
    """Runs that share one GPU at a time (each asks Ray for 1/runs_per_gpu of a GPU)."""


APPLIES_TO: dict[str, tuple[str, ...]] = {
    **{f"errata.{name}": RL_METHODS for name in Errata.model_fields},  # the authors' RL-AUX code
    # (errata.weight_scale_8w3 changes only WA-RL's weights; the as-run rl experiment carries it, as the authors' code did)
    "errata.batch_mean_weights": ("wa-maxl",),
    **{f"maxl.{name}": MAXL_METHODS for name in MaxlConfig.model_fields},
    "maxl.lookahead_lambda_one": ("maxl",),  # wa-maxl learns its weights: no λ to replace
    **{f"rl.{name}": RL_METHODS for name in RLConfig.model_fields},
}
"""Which methods read each erratum and method option. A switch (an erratum, or a MAXL/RL option that takes
on/off or one of named choices) set away from its default for another method is refused: it would be
recorded as part of a run it never touched. Numeric MAXL/RL settings are not checked, so a profile can set
them once for all of its experiments."""


def _is_switch(field: Any) -> bool:
    return field.annotation is bool or getattr(field.annotation, "__origin__", None) is Literal


class TrainConfig(_Strict):
    """Everything one training run needs. Defaults are the paper's (docs/method.md §2-3)."""

    dataset: DatasetName = "cifar100-20"
    """Primary task: cifar100-20 (the 20 superclasses), cifar10 or svhn."""
    method: str = "single"
    """single | human | random | maxl | wa-maxl | rl | wa-rl"""
    lam: float = Field(1.0, ge=0)
    """λ, the auxiliary-loss weight (ignored by the weight-aware methods)."""
    epochs: int = Field(200, gt=0, json_schema_extra=EXTENSIBLE)
    """Training epochs of the main network."""
    batch_size: int = Field(100, gt=0)
    """Training batch size of the main network."""
    lr: float = Field(0.01, gt=0)
    """Main network's SGD learning rate (no weight decay)."""
    momentum: float = Field(0.0, ge=0, lt=1, json_schema_extra=ADDED_LATER)
    """Main network's SGD momentum. 0 = the paper's plain SGD; a settled recipe for reduced-compute cells (a network
    that stops improving within the epochs a CPU affords) is a declared deviation. MAXL's look-ahead and RL-AUX's
    sandbox step stay plain SGD steps, as in the paper."""
    lr_step: int = Field(50, gt=0)
    """StepLR: the learning rate is multiplied by lr_gamma every lr_step epochs."""
    lr_gamma: float = Field(0.5, gt=0, le=1)
    """StepLR decay factor."""
    focal_gamma: float = Field(2.0, ge=0)
    """Focal-loss exponent of the primary and auxiliary losses (0 = cross-entropy)."""
    primary_loss_scale: float = Field(1.0, gt=0)
    """Factor on the primary loss (1 = paper). The loss-scale control: single-task at 1 + λ asks whether
    an auxiliary task at λ helps as a task or only as a larger gradient through the shared trunk."""
    psi: int = Field(5, gt=0)
    """Hierarchy factor: auxiliary classes per primary class (K = psi * C)."""
    train_size: int | None = Field(None, gt=0)
    """Images drawn (class-stratified) from the official train split; None = all."""
    test_size: int | None = Field(None, gt=0)
    """Images drawn (class-stratified) from the official test split; None = all."""
    val_fraction: float = Field(0.1, gt=0, lt=1)
    """Share of the drawn training images held out (stratified) for model selection."""
    width: float = Field(1.0, gt=0, le=4)
    """Multiplier on VGG16's conv channels (1.0 = paper)."""
    seed: int = Field(0, ge=0)
    """Seeds the split, initialisation, batch order, augmentation and agent."""
    data_root: Path = Field(default_factory=lambda: Path(os.environ.get(DATA_ENV_VAR, "data")), json_schema_extra=LOCAL)
    """Folder with the torchvision files or the offline subsets (default: $RLAUX_DATA, else ./data)."""
    download: bool = Field(True, json_schema_extra=LOCAL)
    """Download a dataset that is missing under data_root (needs internet)."""
    offline_subsets: bool = True
    """Use the offline `.npz` subsets when the full dataset is absent (the paper profile turns this
    off, so a paper run can never train on a subset by accident)."""
    data_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    """The data the run reads, by content: the sha256 of its `.npz` file, or of the md5 list torchvision checks its
    official files against (`rlaux.data_source`). None: resolved from the data root when the run starts or its plan
    is written, and recorded in config.json; set: a data root holding other data is refused."""
    device: DeviceName = "auto"
    """auto (CUDA when present), cpu or cuda (refused with one line where CUDA is not usable); the first
    GPU the run can see (`rlaux dispatch`: the one Ray gave it)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Main network's forward passes in fp32 (faithful) or bf16 autocast (faster on a GPU; numbers
    change slightly). MAXL's meta step and the agent stay in fp32."""
    channels_last: bool = False
    """Main network in channels-last memory format (faster convolutions on a GPU; numbers change slightly)."""
    eval_batch_size: int = Field(1000, gt=0, json_schema_extra=LOCAL)
    """Batch size of validation and test evaluation (memory only; results do not change)."""
    progress: bool = Field(True, json_schema_extra=LOCAL)
    """Show progress bars."""
    out: Path = Field(Path("runs/default"), json_schema_extra=LOCAL)
    """Run directory: config.json, history.csv, metrics.json, timing.json, best.pt, and checkpoint.pt
    while the run is unfinished (removed when it completes)."""
    queue: QueueConfig = Field(default_factory=QueueConfig, json_schema_extra=LOCAL)
    maxl: MaxlConfig = Field(default_factory=MaxlConfig)
    rl: RLConfig = Field(default_factory=RLConfig)
    errata: Errata = Field(default_factory=Errata)

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
        return name

    @model_validator(mode="after")
    def _compatible(self) -> TrainConfig:
        if self.method == "human" and not DATASET_FACTS[self.dataset].human_task:
            with_labels = ", ".join(name for name, facts in DATASET_FACTS.items() if facts.human_task)
            raise ValueError(
                f"method 'human' needs human auxiliary labels; dataset {self.dataset!r} has none "
                f"(use dataset {with_labels})"
            )
        human_psi = DATASET_FACTS[self.dataset].human_psi
        if self.method == "human" and self.psi != human_psi:
            raise ValueError(
                f"method 'human' uses the {human_psi} human classes per primary class of {self.dataset!r}; "
                f"set psi to {human_psi}, not {self.psi}"
            )
        k = self.psi * DATASET_FACTS[self.dataset].num_classes
        if self.errata.broadcast_targets and (self.method not in RL_METHODS or self.batch_size != k):
            raise ValueError(
                f"errata.broadcast_targets needs method rl or wa-rl and K = batch_size (the authors' "
                f"CIFAR-100-20 runs had K = B = 100); got method {self.method!r}, K = {k}, "
                f"batch_size = {self.batch_size}"
            )
        if self.errata.broadcast_targets and not self.errata.unmasked_soft_targets:
            raise ValueError(
                "errata.broadcast_targets reproduces code whose actions were unmasked (docs/method.md §6.4, §6.10); "
                "turn on errata.unmasked_soft_targets as well"
            )
        self._switches_apply()
        if self.errata.reset_replays_first_batch and self.rl.reset != "batch":
            raise ValueError(
                "errata.reset_replays_first_batch reproduces the per-batch reset ablation; it needs rl.reset 'batch'"
            )
        if self.rl.reward == "oracle" and not DATASET_FACTS[self.dataset].human_task:
            with_labels = ", ".join(name for name, facts in DATASET_FACTS.items() if facts.human_task)
            raise ValueError(
                f"rl.reward 'oracle' rewards agreement with the human fine labels; dataset {self.dataset!r} has none "
                f"(use dataset {with_labels}, or rl.reward 'paper')"
            )
        if self.rl.oracle_noise and self.rl.reward != "oracle":
            raise ValueError(f"rl.oracle_noise ({self.rl.oracle_noise}) applies to rl.reward 'oracle' only; drop it")
        credit = self.rl.credit
        if credit != "paper" and self.rl.collector != "batched":
            raise ValueError(
                f"rl.credit {credit!r} is written for rl.collector 'batched'; set it, or rl.credit 'paper'"
            )
        if credit != "paper" and self.rl.n_steps not in (None, self.batch_size):
            raise ValueError(
                f"rl.credit {credit!r} aligns rollouts to batches, so rl.n_steps is batch_size ({self.batch_size}); "
                f"drop rl.n_steps ({self.rl.n_steps})"
            )
        if credit == "sample" and self.rl.reward == "paper" and self.precision == "bf16":
            raise ValueError(
                "rl.credit 'sample' takes its influences in fp32 while a bf16 step would move the copy otherwise; "
                "set precision 'fp32' (or rl.credit 'paper')"
            )
        if credit == "sample" and self.rl.reward == "paper" and not self.rl.reward_pairing:
            raise ValueError(
                "rl.credit 'sample' splits the paired reward (loss before - loss after the copy's step) among the "
                "batch's actions; set rl.reward_pairing true"
            )
        if self.rl.reward == "oracle" and self.rl.reward_pairing:
            raise ValueError("rl.reward_pairing pairs the paper's loss-based reward; the oracle has no loss to pair")
        if not self.rl.train_agent:
            trained_only = {
                "rl.placebo": self.rl.placebo,
                "rl.reward": self.rl.reward != "paper",
                "rl.credit": credit != "paper",
                "rl.reward_pairing": self.rl.reward_pairing,
            }
            if any(trained_only.values()):
                set_ = ", ".join(key for key, on in trained_only.items() if on)
                raise ValueError(
                    f"rl.train_agent false trains no agent, so {set_} (how its reward is made or credited) has "
                    f"nothing to act on; drop it, or set rl.train_agent true"
                )
        if self.rl.reward == "oracle" and self.rl.placebo:
            raise ValueError("rl.placebo and rl.reward 'oracle' are two different controls; choose one")
        if self.errata.unmasked_soft_targets and self.rl.target == "in-block":
            raise ValueError(
                "errata.unmasked_soft_targets needs rl.target 'masked' (actions over all K classes); "
                "rl.target 'in-block' has no out-of-block action to leave unmasked"
            )
        return self

    def _switches_apply(self) -> None:
        """Refuse errata and method switches that `method` never reads, listing those it does."""
        wrong, usable = [], []
        for section in ("errata", "maxl", "rl"):
            model = getattr(self, section)
            for name, field in type(model).model_fields.items():
                key = f"{section}.{name}"
                if not _is_switch(field):
                    continue
                if self.method in APPLIES_TO[key]:
                    usable.append(key)
                elif getattr(model, name) != field.default:
                    wrong.append(f"{key} applies only to {', '.join(APPLIES_TO[key])}")
        if wrong:
            raise ValueError(
                f"{'; '.join(wrong)}, not to method {self.method!r}: drop it or change the method "
                f"(the switches {self.method} reads: {', '.join(usable) or 'none'})"
            )

    def snapshot(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able data (written into every run)."""
        return self.model_dump(mode="json")


def _has_path(layer: dict[str, Any], path: tuple) -> bool:
    node: Any = layer
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _format(err: ValidationError, layers: tuple[dict[str, Any], ...] = (), sources: tuple[str, ...] = ()) -> str:
    """One line: every offending key with what is wrong (and, given `sources`, where it came from)."""
    parts = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            parent: Any = TrainConfig  # then the nested section's model class (its field's annotation)
            for part in loc[:-1]:
                parent = parent.model_fields[str(part)].annotation
            msg = f"unknown key; allowed keys here: {', '.join(parent.model_fields)}"
        elif e["type"] == "literal_error":
            msg = f"got {e.get('input')!r}; {msg.lower()}"
        elif "input" in e and e["type"] != "value_error":
            msg = f"got {e['input']!r}; {msg.lower()}"
        origin = [src for layer, src in zip(layers, sources, strict=False) if src and loc and _has_path(layer, loc)]
        parts.append(f"{key}: {msg}" + (f" (from {origin[-1]})" if origin else ""))
    return one_line("invalid config: " + "; ".join(parts))


def _deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_config(*layers: dict[str, Any], sources: tuple[str, ...] = ()) -> TrainConfig:
    """Merge dict layers (later wins, nested dicts merged) and validate them as one config.

    `sources` optionally names each layer (a file name, "command line") for the error message.
    """
    merged: dict[str, Any] = {}
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            where = sources[i] if i < len(sources) and sources[i] else "a config layer"
            raise ConfigError(f"{where} must hold a mapping of config keys to values, not {type(layer).__name__}")
        merged = _deep_merge(merged, layer)
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_format(err, layers, sources)) from None


def read_yaml(path: Path, what: str = "config file") -> Any:
    """Parse a YAML file; a missing, unreadable or unparseable file is a ConfigError naming file and line."""
    path = Path(path)
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(f"{what} {path} {problem}; check the path")
    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {err.start}); save it as a UTF-8 YAML file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(
            one_line(f"{what} {path} is not valid YAML{where}: {problem}; fix the syntax there")
        ) from None


def load_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of config keys to values, not {type(data).__name__}")
    return data
