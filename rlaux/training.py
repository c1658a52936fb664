"""THE training loop, shared by every method (the main network's step is `Trainer.train_step`).

Per epoch: the method's `before_epoch` hook, a pass over a seeded permutation of the
training split (targets and weights from the method), the method's `after_epoch` hook,
the LR scheduler, then validation/test evaluation and an atomic checkpoint.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

from rlaux import checkpoint, data_source, evaluation, ledger
from rlaux.config import TrainConfig
from rlaux.data import Splits
from rlaux.errors import CheckpointError, CheckpointMismatch, ConfigError
from rlaux.io import is_terminal, progress_bar, write_json
from rlaux.methods import make_method
from rlaux.methods.base import AuxMethod, MethodContext
from rlaux.runtime import machine, resolve_device
from rlaux.syncs import EpochSyncs
from rlaux.trainer import Trainer


def train_epoch(trainer: Trainer, method: AuxMethod, epoch: int) -> dict[str, float]:
    """One epoch of THE loop: the method's hooks around a pass of train steps, then the scheduler."""
    cfg = trainer.cfg
    row = method.before_epoch(epoch)
    loss_sum = torch.zeros((), device=trainer.device)
    human = trainer.data.train.aux
    labels = evaluation.LabelStats(trainer.data.info.num_classes, trainer.num_aux, trainer.device)
    batches = progress_bar(trainer.batches(epoch), enabled=cfg.progress, total=trainer.num_batches(), leave=False)
    for batch in batches:
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


def data_record(cfg: TrainConfig, data: Splits) -> dict:
    """What the run read: its file and the file's sha256 (None for data handed in memory), and a hash of the
    selected images' positions in each split."""
    source = data_source.locate(cfg.dataset, cfg.data_root, cfg.offline_subsets, cfg.data_sha256)
    read = source.file if source is not None and cfg.data_sha256 is not None else None
    return {"file": read, "sha256": cfg.data_sha256} | {
        f"{name}_index_sha256": split.index_sha256()
        for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
    }


def build_run(cfg: TrainConfig, data: Splits | None = None) -> tuple[Trainer, AuxMethod]:
    """The loop's state and the configured method, before anything is written."""
    trainer = Trainer.build(cfg, data)
    return trainer, make_method(cfg.method, MethodContext.of(trainer))


def train(
    cfg: TrainConfig,
    resume: bool = False,
    data: Splits | None = None,
    overwrite: bool = False,
) -> dict:
    """Train one run into `cfg.out`; returns its metrics (also written to metrics.json).

    Everything the user handed in (data, and with `resume` the whole run directory) is
    checked before the first file is written: a bad input raises a `UserError` and leaves
    the run directory as it was. A new run never starts over another run's files unless
    `overwrite` (a re-typed command must not destroy a finished run); `resume` continues one.
    """
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out} is a file, not a run directory; use another --out")
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; pass one of them")
    if data is None:
        cfg = data_source.resolve(cfg)  # the data it reads is part of the run (before any comparison)
    if cfg.device == "auto":  # the device it trains on is part of the run, as resolved on this machine
        cfg = cfg.model_copy(update={"device": resolve_device("auto").type})
    run = ledger.verdict(out, cfg.snapshot())
    if resume and run.state == "finished":
        assert run.metrics is not None
        return run.metrics
    if resume and run.state in ("stale", "damaged"):
        error = CheckpointMismatch if run.state == "stale" else CheckpointError
        raise error(
            f"cannot resume {out}: {run.reason}; use a new --out, or --overwrite instead of --resume to start over"
        )
    if not resume and run.state != "new" and not overwrite:
        checkpoint.refuse_new_run(out, run)
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
    write_json(out / ledger.CODE_FILE, ledger.code_record(cfg.method))  # the results version it trains under
    write_json(out / ledger.CONFIG, cfg.snapshot())
    write_json(out / "data.json", data_record(cfg, trainer.data))

    desc = f"{cfg.method}/{cfg.dataset}"
    epochs = progress_bar(range(start, cfg.epochs), enabled=cfg.progress, desc=desc, initial=start, total=cfg.epochs)
    plain = cfg.progress and not is_terminal(sys.stderr)  # a pipe or a log: one plain line per epoch, no bars
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
        if evaluation.best_epoch(history) == len(history) - 1:
            checkpoint.atomic_torch_save(trainer.model.state_dict(), out / "best.pt")
        checkpoint.save(out, epoch + 1, history, trainer, method)
        scores = f"loss {row['train_loss']:.3f}, val {row['val_acc']:.3f}, test {row['test_acc']:.3f}"
        epochs.set_postfix_str(scores)
        if plain:
            print(f"{desc} epoch {epoch + 1}/{cfg.epochs}: {scores}", file=sys.stderr, flush=True)

    metrics = evaluation.summarize(history)
    write_json(out / "metrics.json", metrics | {"config": cfg.snapshot()})
    write_json(
        out / "timing.json", evaluation.timing(history, len(trainer.data.train), trainer.device) | syncs.timing()
    )
    write_json(out / "machine.json", machine(str(trainer.device)))  # where it trained
    checkpoint.finish(out)
    return metrics
