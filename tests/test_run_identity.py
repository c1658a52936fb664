"""One classification of the config decides what is the same run: plans, adoption, resume and overwrite agree."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rlaux import ledger, run_identity
from rlaux.config import TrainConfig, build_config
from rlaux.experiments import load_params, run_experiment


def test_every_config_field_declares_its_identity_class_beside_its_definition():
    """run_identity reads the classes from rlaux.config's fields, nested sections included: a field declares LOCAL,
    EXTENSIBLE or ADDED_LATER there, else it makes another run (and a new such field changes every plan, which
    tests/test_experiments.py's clean clone of the committed study catches)."""
    assert {kind for kind, _ in run_identity.FIELDS.values()} == {"run", "local", "extensible", "added later"}
    assert {path[0] for path in run_identity.FIELDS} == set(TrainConfig.model_fields)
    assert {"data_root", "download", "progress", "queue", "out", "eval_batch_size"} == run_identity.LOCAL_FIELDS
    assert run_identity.LOCAL_PATHS - {(name,) for name in run_identity.LOCAL_FIELDS} == {("rl", "diagnostics")}
    assert ("queue", "gpus") not in run_identity.FIELDS  # a local section's fields are local with it
    assert {"epochs"} == run_identity.EXTENSIBLE_FIELDS


def test_settings_that_move_no_number_leave_the_identity():
    """The evaluation batch size and the agent's diagnostics never make another run (their outputs are compared in
    test_eval_batch_size_moves_no_number and tests/test_rl_agent.py::test_diagnostics_never_change_the_run)."""
    old = build_config({"method": "rl", "epochs": 2}).snapshot()
    new = build_config({"method": "rl", "epochs": 2, "eval_batch_size": 7, "rl": {"diagnostics": False}}).snapshot()
    assert run_identity.changed_fields(old, new) == [] and run_identity.identity(old) == run_identity.identity(new)
    assert "diagnostics" not in run_identity.identity(old)["rl"] and new["rl"]["diagnostics"] is False


def test_eval_batch_size_moves_no_number(small_config, tmp_path, one_thread):
    """The same run evaluated in batches of 1,000 and of 7 images: every metric and every history value but the
    wall-clock seconds are equal."""
    from rlaux.training import train

    runs = [
        small_config(epochs=2, train_size=300, eval_batch_size=size, out=tmp_path / f"e{size}") for size in (1000, 7)
    ]
    metrics = [train(cfg) for cfg in runs]
    assert metrics[0] == metrics[1]
    histories = [pd.read_csv(cfg.out / "history.csv").drop(columns="seconds") for cfg in runs]
    pd.testing.assert_frame_equal(*histories, check_exact=True)


def test_local_fields_never_make_another_run_and_epochs_only_extend_a_killed_one():
    old = build_config({"method": "single", "epochs": 2}).snapshot()
    local = build_config(
        {"method": "single", "epochs": 2, "data_root": "/elsewhere", "progress": False, "download": False},
        {"queue": {"runs_per_gpu": 4}, "out": "runs/moved"},
    ).snapshot()
    assert run_identity.changed_fields(old, local) == []
    longer = dict(old, epochs=5)
    assert run_identity.changed_fields(old, longer, resuming=True) == []
    assert run_identity.changed_fields(old, longer) == ["epochs"]
    assert run_identity.changed_fields(old, dict(old, lr=0.1), resuming=True) == ["lr"]


def test_finished_needs_metrics_with_config_the_run_files_and_no_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert ledger.finished(run) is None
    (run / "metrics.json").write_text(json.dumps({"test_acc": 1.0, "config": {"lr": 0.01}}))
    for name in ledger.FINISHED_FILES:
        assert ledger.finished(run) is None  # one file still missing
        (run / name).touch()
    assert ledger.finished(run) == {"test_acc": 1.0, "config": {"lr": 0.01}}
    (run / "checkpoint.pt").touch()
    assert ledger.finished(run) is None  # still under way
    (run / "checkpoint.pt").unlink()
    (run / "metrics.json").write_text("[1, 2]")
    assert ledger.finished(run) is None


@pytest.fixture
def two_epochs(tmp_path, monkeypatch, data_root) -> Path:
    params = {
        "profile": "tiny",
        "seed_pool": [0],
        "profiles": {
            "tiny": {
                "seeds": 1,
                "settings": {"epochs": 2, "width": 0.0625, "device": "cpu", "progress": False},
                "datasets": {"cifar10": {"train_size": 300, "test_size": 200}},
            }
        },
        "experiments": {"c10-single": {"dataset": "cifar10", "method": "single", "data_root": str(data_root)}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_killed_run_resumes_after_a_machine_local_edit_of_params(two_epochs, one_thread, kill_after_first_epoch):
    """Editing `queue` (GPU packing) in params.yaml leaves the plan as it was, and a killed run's checkpoint
    is resumed, not discarded and retrained (it used to raise CheckpointMismatch, and the stage started over)."""
    plan = load_params().plan("c10-single")
    kill_after_first_epoch(lambda: run_experiment("c10-single"))
    run = Path("runs/tiny/c10-single/s0")
    killed_epoch = (run / "history.csv").read_text().splitlines()[1]  # its `seconds` are this process's own

    params = yaml.safe_load(Path("params.yaml").read_text())
    params["profiles"]["tiny"]["settings"]["queue"] = {"runs_per_gpu": 4, "gpus": 1}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert load_params().plan("c10-single") == plan
    metrics = run_experiment("c10-single")[0]
    history = (run / "history.csv").read_text().splitlines()
    assert history[1] == killed_epoch and len(history) == 3  # resumed at epoch 2, not retrained
    assert ledger.finished(run) is not None and metrics == {
        k: v for k, v in json.loads((run / "metrics.json").read_text()).items() if k != "config"
    }
    assert json.loads((run / "config.json").read_text())["queue"]["runs_per_gpu"] == 4


def test_a_field_added_later_at_its_default_keeps_the_committed_run():
    """A run trained before rl.reward, rl.credit, ... existed (its config.json lacks them) is the same run as a
    config naming their defaults, so nothing retrains and no plan changes; a non-default value is another run.
    The registered defaults are the config's own."""
    from rlaux.config import build_config
    from rlaux.run_identity import OPTIONAL_FIELDS, changed_fields, identity

    new = build_config(dict(method="rl")).snapshot()
    old = {k: (dict(v) if isinstance(v, dict) else v) for k, v in new.items()}
    for *parents, leaf in OPTIONAL_FIELDS:
        section = old
        for key in parents:
            section = section[key]
        del section[leaf]
    assert changed_fields(old, new) == [] and identity(old) == identity(new)
    batch = build_config(dict(method="rl", rl={"credit": "batch"})).snapshot()
    assert changed_fields(old, batch) == ["rl"] and identity(batch)["rl"]["credit"] == "batch"
    assert "credit" in new["rl"]  # identity copies, it never edits the caller's snapshot
    for (*parents, leaf), default in OPTIONAL_FIELDS.items():
        section = new
        for key in parents:
            section = section[key]
        assert section[leaf] == default
