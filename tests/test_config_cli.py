"""Config validation and the CLI: bad input is rejected, by key, before anything is written."""

from __future__ import annotations

import pytest
import yaml

from rlaux.cli import main
from rlaux.config import build_config
from rlaux.errors import ConfigError
from rlaux.methods import METHODS


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
    cfg = build_config({"maxl": {"order": 1}, "lam": 2}, {"maxl": {"lr": 0.1}})
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
