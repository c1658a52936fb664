"""Real runs of the shared loop on the CIFAR-10 subset: learning, determinism, resume."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from rlaux.cli import main
from rlaux.training import train

pytestmark = pytest.mark.slow


def _metrics(path):
    return json.loads((path / "metrics.json").read_text())


def test_single_learns_well_above_chance(small_config):
    cfg = small_config(epochs=3, train_size=2000)
    metrics = train(cfg)
    assert metrics["test_acc_final"] > 25.0, metrics  # chance is 10%
    saved = _metrics(cfg.out)
    for key in ("test_acc_last15", "test_acc_best_val", "precision", "recall", "f1", "config"):
        assert key in saved
    assert saved["config"]["method"] == "single"
    rows = list(csv.DictReader(open(cfg.out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert saved["test_acc_last15"] == pytest.approx(sum(float(r["test_acc"]) for r in rows) / 3)


def test_same_seed_same_metrics_and_resume_matches(small_config, tmp_path, kill_after_first_epoch):
    a = small_config(method="random", epochs=2, train_size=600, out=str(tmp_path / "a"))
    b = small_config(method="random", epochs=2, train_size=600, out=str(tmp_path / "b"))
    train(a)
    train(b)
    assert (a.out / "metrics.json").read_text().replace(str(a.out), "") == (b.out / "metrics.json").read_text().replace(
        str(b.out), ""
    )

    resumed = small_config(method="random", epochs=2, train_size=600, out=str(tmp_path / "c"))
    kill_after_first_epoch(resumed)
    assert not (resumed.out / "metrics.json").exists()
    first_epoch = next(csv.DictReader(open(resumed.out / "history.csv")))
    train(resumed, resume=True)
    assert next(csv.DictReader(open(resumed.out / "history.csv"))) == first_epoch  # continued, not redone
    strip = lambda m: {k: v for k, v in m.items() if k != "config"}  # noqa: E731
    assert strip(_metrics(resumed.out)) == strip(_metrics(a.out))
    assert len(list(csv.DictReader(open(resumed.out / "history.csv")))) == 2


def test_finished_run_keeps_no_checkpoint_and_resumes_as_done(small_config, tmp_path, monkeypatch):
    import rlaux.training
    from rlaux.errors import CheckpointMismatch

    cfg = small_config(epochs=1, train_size=300, out=str(tmp_path / "run"))
    metrics = train(cfg)
    assert sorted(p.name for p in cfg.out.iterdir()) == [
        "best.pt",
        "code.json",  # the results version it trained under (rlaux.ledger)
        "config.json",
        "data.json",  # what it read: the file, its sha256, the selected images' position hashes
        "history.csv",
        "machine.json",
        "metrics.json",
        "timing.json",
    ]
    machine = json.loads((cfg.out / "machine.json").read_text())  # where it trained, as `rlaux experiment` records it
    assert machine["python"].count(".") == 2 and machine["torch"] == torch.__version__ and machine["threads"] >= 1

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr(rlaux.training, "build_run", no_training)
    assert train(cfg, resume=True) == metrics
    with pytest.raises(CheckpointMismatch, match="epochs"):  # its checkpoint is gone: it cannot be extended
        train(small_config(epochs=2, train_size=300, out=str(tmp_path / "run")), resume=True)


def test_deterministic_mode_skips_the_nan_fill(small_config):
    from rlaux.trainer import Trainer

    torch.utils.deterministic.fill_uninitialized_memory = True
    Trainer.build(small_config(epochs=1, train_size=300))
    assert torch.utils.deterministic.fill_uninitialized_memory is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["single", "maxl", "rl", "wa-rl"])
def test_every_method_is_deterministic_on_cuda_without_warn_only(small_config, method):
    """A non-deterministic CUDA op raises here instead of warning; same seed, same epoch, twice."""
    from rlaux.runtime import make_deterministic
    from rlaux.training import build_run, train_epoch

    rows = []
    for _ in range(2):
        trainer, aux = build_run(small_config(method=method, epochs=1, train_size=300, device="cuda"))
        make_deterministic(trainer.device, warn_only=False)
        rows.append(train_epoch(trainer, aux, 0))
    assert rows[0] == rows[1]


def test_bf16_and_channels_last_train_and_change_the_numbers_slightly(small_config, tmp_path):
    fp32 = train(small_config(epochs=1, train_size=300, out=str(tmp_path / "fp32")))
    fast = train(
        small_config(epochs=1, train_size=300, precision="bf16", channels_last=True, out=str(tmp_path / "fast"))
    )
    assert fast != fp32 and abs(fast["test_acc_final"] - fp32["test_acc_final"]) < 15
    history = (tmp_path / "fast" / "history.csv").read_text()
    assert "nan" not in history.lower()


def test_resume_refuses_a_different_config(small_config, tmp_path):
    train(small_config(epochs=1, train_size=300))
    with pytest.raises(ValueError, match="lam"):
        train(small_config(epochs=2, train_size=300, lam=3.0), resume=True)


def test_cli_train_human_and_evaluate_roundtrip(data_root, tmp_path, capsys):
    out = tmp_path / "human"
    main(
        [
            "train",
            "--dataset",
            "cifar100-20",
            "--method",
            "human",
            "--epochs",
            "1",
            "--width",
            "0.125",
            "--seed",
            "0",
            "--data-root",
            str(data_root),
            "--device",
            "cpu",
            "--progress",
            "false",
            "--out",
            str(out),
        ]
    )
    trained = _metrics(out)
    assert f"run saved in {out}" in capsys.readouterr().err  # stdout stays the metrics' JSON
    main(["evaluate", str(out)])
    evaluated = _metrics(out)
    for key in ("test_acc_best_val", "precision", "recall", "f1", "test_acc_last15"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-9)
    assert "test_acc_last15" in capsys.readouterr().out


def test_human_rejects_dataset_without_human_labels(small_config):
    with pytest.raises(ValueError, match="human auxiliary labels"):
        train(small_config(method="human", epochs=1))
    assert not small_config().out.exists()


def test_random_labels_are_fixed_and_inside_the_block(small_config):
    from rlaux.methods import make_method
    from rlaux.methods.base import MethodContext
    from rlaux.trainer import Trainer

    cfg = small_config(method="random", train_size=500)
    trainer = Trainer.build(cfg)
    method, again = make_method("random", MethodContext.of(trainer)), make_method("random", MethodContext.of(trainer))
    batch = next(trainer.batches(0))
    labels = method.targets(batch).target
    assert torch.equal(labels // 5, batch.y)
    assert torch.equal(labels, again.targets(batch).target)  # a function of the index and seed
    assert len(labels.unique()) > 10
    assert torch.all(method.targets(batch).weight == cfg.lam)


def test_experiment_keeps_its_finished_run_and_replaces_a_stale_one(data_root, tmp_path, monkeypatch):
    """`rlaux experiment` (the DVC stage, and its resume) still trains, keeps and replaces runs under the
    protection of run directories: a finished run is kept byte for byte, one of an older config retrained."""
    import yaml

    params = {
        "profile": "tiny",
        "seed_pool": [0],
        "profiles": {
            "tiny": {
                "seeds": 1,
                "settings": {"width": 0.0625, "device": "cpu", "progress": False, "data_root": str(data_root)},
                "datasets": {"cifar10": {"epochs": 1, "train_size": 300, "test_size": 100}},
            }
        },
        "experiments": {"c10-single": {"dataset": "cifar10", "method": "single"}},
    }
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = tmp_path / "runs" / "tiny" / "c10-single" / "s0"
    main(["experiment", "c10-single"])
    first = {p.name: p.read_bytes() for p in run.iterdir()}
    assert set(first) == {
        "best.pt",
        "code.json",
        "config.json",
        "data.json",
        "history.csv",
        "machine.json",
        "metrics.json",
        "timing.json",
    }
    main(["experiment", "c10-single"])
    assert {p.name: p.read_bytes() for p in run.iterdir()} == first
    params["experiments"]["c10-single"]["lr"] = 0.05
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(["experiment", "c10-single"])
    assert json.loads((run / "metrics.json").read_text())["config"]["lr"] == 0.05
    machine = json.loads((run / "machine.json").read_text())  # where it ran: node, CPU or GPU, threads
    assert machine["node"] and machine["threads"] == torch.get_num_threads() and machine["ray_node"] == ""


def test_progress_in_a_log_is_one_plain_line_per_epoch(small_config, capsys):
    """Output to a pipe or a file (pytest's capture is neither a terminal): no bars, whose carriage-return redraws
    and escape codes would fill the log, but one plain line per epoch (issue 36)."""
    cfg = small_config(epochs=2, train_size=300, progress=True)
    train(cfg)
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b[" not in err
    lines = [line for line in err.splitlines() if line.startswith("single/cifar10 epoch ")]
    assert [line.split(":")[0] for line in lines] == ["single/cifar10 epoch 1/2", "single/cifar10 epoch 2/2"]
    assert all(", val " in line and ", test " in line for line in lines)
