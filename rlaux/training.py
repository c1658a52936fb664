"""THE training loop, shared by every method, and `train_step`, the one place a main
network is updated.

Per epoch: the method's `before_epoch` hook, a pass over a seeded permutation of the
training split (targets and weights from the method), the method's `after_epoch` hook,
the LR scheduler, then validation/test evaluation and an atomic checkpoint. The batch
order and augmentation of epoch e are pure functions of (seed, e), so a method can replay
an epoch exactly (RL-AUX's train-agent epoch) and a resumed run draws what the killed one
would have drawn.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from rlaux import checkpoint, evaluation
from rlaux.augment import BatchAugment
from rlaux.config import TrainConfig
from rlaux.data import Splits, load_splits
from rlaux.errors import CheckpointError, ConfigError
from rlaux.io import write_json
from rlaux.losses import combine_aux, focal_loss
from rlaux.methods import make_method
from rlaux.methods.base import AuxMethod, AuxTargets, Batch, MethodContext
from rlaux.models import AuxNet
from rlaux.syncs import EpochSyncs

# Independent random streams, so e.g. a meta pass never shifts the main pass's shuffle.
STREAM_ORDER, STREAM_AUGMENT, STREAM_META = 1, 2, 3


def resolve_device(name: str) -> torch.device:
    """auto: CUDA when present. The first visible GPU: a dispatched run's is the one Ray gave it
    (`rlaux.dispatch`, which sets CUDA_VISIBLE_DEVICES before CUDA starts)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available here; use --device cpu or auto")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", 0)


def make_deterministic(device: torch.device, warn_only: bool = True) -> None:
    """Same seed, same metrics on a GPU too (CPU kernels are deterministic already).

    A non-deterministic op warns (`warn_only=False`: fails, as the GPU test runs it). PyTorch's
    deterministic mode also fills every new allocation with NaN to expose reads of
    uninitialised memory, which costs time and never changes a correct result: turned off.
    """
    torch.utils.deterministic.fill_uninitialized_memory = False
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
        torch.cuda.set_device(device)


def total_loss(outputs: tuple[Tensor, Tensor], y: Tensor, targets: AuxTargets, cfg: TrainConfig) -> Tensor:
    """mean focal primary loss (times `primary_loss_scale`) + mean of weight_i * focal auxiliary loss_i (SPEC §1)."""
    pri_logits, aux_logits = outputs
    loss = cfg.primary_loss_scale * focal_loss(pri_logits, y, cfg.focal_gamma).mean()  # x 1.0 is exact
    if targets.target is not None:
        aux = focal_loss(aux_logits, targets.target, cfg.focal_gamma)
        loss = loss + combine_aux(aux, targets.weight, cfg.errata.batch_mean_weights)
    return loss


def new_model(cfg: TrainConfig, num_classes: int) -> AuxNet:
    return AuxNet(num_classes, cfg.psi * num_classes, cfg.width)


def new_optimizer(model: nn.Module, cfg: TrainConfig) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.StepLR]:
    """Plain SGD (no momentum, no weight decay) and StepLR, as the paper's code (SPEC §2)."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)


@dataclass
class Trainer:
    cfg: TrainConfig
    data: Splits  # on the device
    device: torch.device
    model: AuxNet
    optimizer: torch.optim.SGD
    scheduler: torch.optim.lr_scheduler.StepLR
    augment: BatchAugment

    @classmethod
    def build(cls, cfg: TrainConfig, data: Splits | None = None) -> Trainer:
        device = resolve_device(cfg.device)
        make_deterministic(device)
        torch.manual_seed(cfg.seed)
        data = (data or load_splits(cfg)).to(device)
        model = new_model(cfg, data.info.num_classes).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt, sched = new_optimizer(model, cfg)
        return cls(cfg, data, device, model, opt, sched, BatchAugment(data.info, device=device))

    def autocast(self) -> torch.autocast:
        """The main network's forward passes: fp32, or bf16 autocast with `precision: bf16`."""
        return torch.autocast(self.device.type, torch.bfloat16, enabled=self.cfg.precision == "bf16")

    @property
    def num_aux(self) -> int:
        return self.cfg.psi * self.data.info.num_classes

    def generator(self, epoch: int, *stream: int) -> torch.Generator:
        """A generator for (seed, epoch, stream...); SeedSequence keeps every such key independent."""
        seed = int(np.random.SeedSequence([self.cfg.seed, epoch, *stream]).generate_state(1, np.uint64)[0])
        return torch.Generator(device=self.device).manual_seed(seed)

    def batches(self, epoch: int, stream: int = STREAM_ORDER) -> Iterator[Batch]:
        """The epoch's batches: slices of a seeded permutation, augmented on the device."""
        train = self.data.train
        order = torch.randperm(len(train), device=self.device, generator=self.generator(epoch, stream))
        g_aug = self.generator(epoch, stream, STREAM_AUGMENT)
        for i in range(0, len(order), self.cfg.batch_size):
            idx = order[i : i + self.cfg.batch_size]
            yield Batch(self.augment(train.x[idx], g_aug), train.y[idx], idx)

    def num_batches(self) -> int:
        return -(-len(self.data.train) // self.cfg.batch_size)

    def train_step(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, targets: AuxTargets
    ) -> Tensor:
        """One SGD step of `model` on the batch; returns the detached loss (no host sync)."""
        model.train()
        with self.autocast():
            loss = total_loss(model(batch.x), batch.y, targets, self.cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()


def train_epoch(trainer: Trainer, method: AuxMethod, epoch: int) -> dict[str, float]:
    """One epoch of THE loop: the method's hooks around a pass of train steps, then the scheduler."""
    cfg = trainer.cfg
    row = method.before_epoch(epoch)
    loss_sum = torch.zeros((), device=trainer.device)
    human = trainer.data.train.aux
    labels = evaluation.LabelStats(trainer.data.info.num_classes, trainer.num_aux, trainer.device)
    for batch in tqdm(trainer.batches(epoch), total=trainer.num_batches(), leave=False, disable=not cfg.progress):
        targets = method.targets(batch)
        loss_sum += trainer.train_step(trainer.model, trainer.optimizer, batch, targets)
        method.after_step(batch, targets)
        labels.add(batch.y, targets, None if human is None else human[batch.index])
    row |= method.after_epoch(epoch) | labels.read()
    trainer.scheduler.step()
    row["train_loss"] = loss_sum.item() / trainer.num_batches()
    if not math.isfinite(row["train_loss"]):
        raise FloatingPointError(
            f"{cfg.method} diverged in epoch {epoch + 1} (train loss {row['train_loss']}); lower lr (now {cfg.lr})"
        )
    return row


def build_run(cfg: TrainConfig, data: Splits | None = None) -> tuple[Trainer, AuxMethod]:
    """The loop's state and the configured method, before anything is written."""
    trainer = Trainer.build(cfg, data)
    return trainer, make_method(cfg.method, MethodContext.of(trainer))


def train(
    cfg: TrainConfig,
    resume: bool = False,
    data: Splits | None = None,
    overwrite: bool = False,
    gpu_slot: str | None = None,
) -> dict:
    """Train one run into `cfg.out`; returns its metrics (also written to metrics.json).

    Everything the user handed in (data, and with `resume` the whole run directory) is
    checked before the first file is written: a bad input raises a `UserError` and leaves
    the run directory as it was. A new run never starts over another run's files unless
    `overwrite` (a re-typed command must not destroy a finished run); `resume` continues one.
    """
    from rlaux.experiments import machine

    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out} is a file, not a run directory; use another --out")
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; pass one of them")
    if not resume:
        checkpoint.check_new_run(out, cfg, overwrite)
    if resume and (done := checkpoint.finished(out, cfg)) is not None:
        return done
    trainer, method = build_run(cfg, data)
    history: list[dict] = []
    start = 0
    if resume:
        state = checkpoint.read_run(out, cfg, trainer.model, trainer.device)
        if state is not None:
            start, history = checkpoint.restore(state, out, trainer, method)
    if overwrite:
        checkpoint.clear(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", cfg.snapshot())

    epochs = tqdm(
        range(start, cfg.epochs),
        desc=f"{cfg.method}/{cfg.dataset}",
        disable=not cfg.progress,
        initial=start,
        total=cfg.epochs,
    )
    syncs = EpochSyncs(trainer.device)  # host syncs per epoch on CUDA (timing.json); nothing elsewhere
    for epoch in epochs:
        t0 = time.perf_counter()
        row: dict = {"epoch": epoch + 1, "lr": trainer.optimizer.param_groups[0]["lr"]}
        with syncs.epoch():
            row |= train_epoch(trainer, method, epoch)
            row["seconds"] = time.perf_counter() - t0
            with trainer.autocast():
                row |= evaluation.evaluate_epoch(
                    trainer.model, trainer.data, trainer.augment.normalize, cfg.eval_batch_size
                )
        history.append(row)
        if row["val_acc"] >= max(r["val_acc"] for r in history):
            checkpoint.atomic_torch_save(trainer.model.state_dict(), out / "best.pt")
        checkpoint.save(out, epoch + 1, history, trainer, method)
        epochs.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_acc']:.3f}", test=f"{row['test_acc']:.3f}")

    metrics = evaluation.summarize(history)
    write_json(out / "metrics.json", metrics | {"config": cfg.snapshot()})
    write_json(
        out / "timing.json", evaluation.timing(history, len(trainer.data.train), trainer.device) | syncs.timing()
    )
    write_json(out / "machine.json", machine(str(trainer.device)) | {"gpu_slot": gpu_slot})  # where it trained
    checkpoint.finish(out)
    return metrics
