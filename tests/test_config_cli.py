"""Config validation and the CLI: bad input is rejected, by key, before anything is written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlaux.cli import build_parser, config_from_args, main
from rlaux.config import build_config
from rlaux.errors import ConfigError
from rlaux.experiments import load_params
from rlaux.registry import METHODS

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "layer, names",
    [
        ({"epochz": 3}, ["epochz", "unknown key", "epochs"]),
        ({"train_size": -5}, ["train_size", "-5"]),
        ({"method": "magic"}, ["method", "magic", *METHODS]),
        ({"dataset": "mnist"}, ["dataset", "mnist", "cifar100-20", "cifar10", "svhn"]),
        ({"maxl": {"order": 3}}, ["maxl.order", "3"]),
        ({"errata": {"frozen_head": True}}, ["errata.frozen_head", "frozen_heads"]),
        ({"method": "human", "dataset": "cifar10"}, ["human", "cifar10", "cifar100-20"]),
        (
            {"method": "rl", "dataset": "cifar10", "errata": {"broadcast_targets": True}},
            ["broadcast_targets", "K = 50"],
        ),
    ],
)
def test_bad_values_are_named(layer, names):
    with pytest.raises(ConfigError) as err:
        build_config(layer)
    for name in names:
        assert name in str(err.value)


def test_layers_merge_nested_keys():
    cfg = build_config({"method": "maxl", "maxl": {"order": 1}, "lam": 2}, {"maxl": {"lr": 0.1}})
    assert (cfg.maxl.order, cfg.maxl.lr, cfg.lam) == (1, 0.1, 2.0)


def test_data_root_defaults_to_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RLAUX_DATA", str(tmp_path))
    assert build_config({}).data_root == tmp_path


@pytest.mark.parametrize(
    "argv, key",
    [
        (["--train-size", "-1"], "train_size"),
        (["--method", "nope"], "method"),
        (["--dataset", "imagenet"], "dataset"),
        (["--errata.frozen-heads", "maybe"], "errata.frozen_heads"),
    ],
)
def test_cli_rejects_bad_values_before_writing(tmp_path, capsys, argv, key):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(out), *argv])
    assert exit_.value.code == 2
    assert key in capsys.readouterr().err
    assert not out.exists()


def test_yaml_config_unknown_key_rejected(tmp_path, capsys):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"dataset": "cifar10", "lerning_rate": 0.1}))
    with pytest.raises(SystemExit):
        main(["train", "--config", str(cfg_file), "--out", str(tmp_path / "run")])
    assert "lerning_rate" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_missing_data_fails_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                "--dataset",
                "svhn",
                "--data-root",
                str(tmp_path / "nowhere"),
                "--download",
                "false",
                "--out",
                str(out),
            ]
        )
    assert "svhn" in capsys.readouterr().err and not out.exists()


def test_cuda_where_there_is_none_fails_in_one_line_before_any_data(tmp_path, capsys):
    """The paper profile asks for `cuda`: a machine without a usable GPU must say so, not train on the CPU."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is usable here")
    out = tmp_path / "run"
    argv = ["train", "--device", "cuda", "--data-root", str(tmp_path / "nowhere"), "--download", "false"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1  # one line, and not the missing data's error
    assert "device 'cuda' requested but CUDA is not available here" in err and not out.exists()


def test_train_help_explains_every_key_in_groups(capsys):
    from pydantic import BaseModel

    from rlaux.config import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for group in ("run:", "data:", "model:", "MAXL:", "RL:", "errata:"):
        assert group in text
    assert "defaults follow the paper's text" in text
    for name, field in TrainConfig.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            fields = [(f"{name}.{sub}", f) for sub, f in field.annotation.model_fields.items()]
        else:
            fields = [(name, field)]
        for key, f in fields:
            assert f.description, f"{key} has no docstring"
            flag = "--" + key.replace("_", "-")
            assert f"{flag} " in text and " ".join(f.description.split())[:30] in text, key


def test_one_line_messages_for_yaml_syntax(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: cifar10\nlr: [0.1\n")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and str(cfg) in err and "line" in err


# ---------------------------------------------------------------- fast, specific errors
def _cli_in_subprocess(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`rlaux argv` in a fresh interpreter; prints whether torch was imported when the command ended."""
    code = (
        "import sys\nfrom rlaux.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
        "    print('torch loaded:', 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.parametrize(
    "argv, names",
    [
        (["--lr", "-1"], ["lr", "-1"]),
        (["--method", "maxl", "--errata.frozen-heads"], ["errata.frozen_heads", "rl, wa-rl", "maxl.order"]),
        (["--resume", "--overwrite"], ["--resume", "--overwrite"]),
    ],
)
def test_config_errors_are_reported_before_torch_loads(tmp_path, argv, names):
    done = _cli_in_subprocess(["train", "--out", str(tmp_path / "run"), *argv])
    assert done.returncode == 2 and done.stdout.strip() == "torch loaded: False", done
    assert done.stderr.startswith("rlaux: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert all(name in done.stderr for name in names), done.stderr
    assert not (tmp_path / "run").exists()


def test_experiment_outside_the_repository_says_where_it_looked_and_how_to_point_elsewhere(tmp_path):
    done = _cli_in_subprocess(["experiment", "c10-single"], cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert str(tmp_path / "params.yaml") in done.stderr and "--params" in done.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "layer, names",
    [
        ({"method": "maxl", "errata": {"frozen_heads": True}}, ["errata.frozen_heads", "maxl.lookahead_lambda_one"]),
        ({"method": "maxl", "errata": {"batch_mean_weights": True}}, ["errata.batch_mean_weights", "wa-maxl"]),
        ({"method": "wa-maxl", "maxl": {"lookahead_lambda_one": True}}, ["maxl.lookahead_lambda_one", "'wa-maxl'"]),
        ({"method": "single", "rl": {"placebo": True}}, ["rl.placebo", "'single'", "none"]),
        ({"method": "rl", "maxl": {"order": 1}}, ["maxl.order", "errata.frozen_heads", "rl.placebo"]),
        ({"method": "rl", "errata": {"reset_replays_first_batch": True}}, ["rl.reset", "batch"]),
    ],
)
def test_switches_that_the_method_never_reads_are_refused_with_those_it_does(layer, names):
    with pytest.raises(ConfigError) as err:
        build_config(layer)
    assert all(name in str(err.value) for name in names), err.value


def test_switches_that_apply_and_numeric_settings_shared_by_a_profile_are_accepted():
    build_config({"method": "wa-maxl", "errata": {"batch_mean_weights": True}, "maxl": {"order": 1}})
    build_config({"method": "rl", "rl": {"reset": "batch"}, "errata": {"reset_replays_first_batch": True}})
    build_config({"method": "single", "rl": {"n_epochs": 1}, "maxl": {"lr": 0.1}})  # a profile sets these for all
    build_config({"method": "single", "maxl": {"order": 2}, "errata": {"frozen_heads": False}})  # the defaults


def test_every_run_of_every_profile_in_params_yaml_is_valid():
    """The matrix stays valid under the switch rules (the as-run experiments turn on many errata on purpose)."""
    params = load_params(REPO / "params.yaml")
    built = 0
    for profile in params.profiles:
        params.profile = profile
        for exp_id in params.experiments:
            for seed in params.pool():
                built += params.run_config(exp_id, seed) is not None
    assert built > 100


def test_the_readmes_train_commands_are_valid():
    text = (REPO / "README.md").read_text().replace("\\\n", " ")  # continued lines joined
    commands = [" ".join(m.split()) for m in re.findall(r"^rlaux train (.*?)(?:#.*)?$", text, re.MULTILINE)]
    assert len(commands) >= 2
    for command in commands:
        argv = re.sub(r"--config \S+", "", command).split()  # the YAML file is the reader's own
        config_from_args(build_parser().parse_args(["train", *argv]))
