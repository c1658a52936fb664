"""The run ledger (`rlaux.ledger.verdict`) is how every caller decides about a run directory: its states on
hand-made directories, and, per caller (train --resume, a train stage, a dispatched task, the accuracy gates),
that a run of another results version or another data file is never reused."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlaux import ledger, run_identity
from rlaux.errors import CheckpointError, CheckpointMismatch

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"dataset": "cifar10", "method": "single", "lr": 0.01, "epochs": 2, "seed": 0, "out": "x"}


def test_the_ledger_imports_no_torch():
    check = "import sys, rlaux.ledger; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


def _write(run: Path, **files: object) -> None:
    run.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = run / name.replace("_", ".", 1)  # code_json: code.json
        path.write_text(content if isinstance(content, str) else json.dumps(content))


def test_each_state_of_a_run_directory(tmp_path):
    run, code = tmp_path / "run", ledger.code_record("single")
    assert ledger.verdict(run, CONFIG).state == "new"  # no directory
    run.mkdir()
    assert ledger.verdict(run, CONFIG).state == "new"  # empty
    _write(run, code_json=code)
    assert ledger.verdict(run, CONFIG) == ledger.Verdict(
        "new", "killed before it wrote its config", None, ("code.json",)
    )
    _write(run, config_json=CONFIG)
    assert ledger.verdict(run, CONFIG).state == "resume"  # killed before its first checkpoint
    assert ledger.verdict(run, CONFIG | {"epochs": 5}).state == "resume"  # a killed run may be extended
    other = ledger.verdict(run, CONFIG | {"lr": 0.1})
    assert (other.state, other.reason) == ("stale", "its config.json was written with different lr")
    _write(run, history_csv="epoch\n1\n")
    assert ledger.verdict(run, CONFIG).reason == "it holds history.csv but its checkpoint.pt is missing"
    _write(run, **{"checkpoint.pt": ""})
    assert ledger.verdict(run, CONFIG).state == "resume"
    _write(run, metrics_json={"test_acc": 1.0, "config": CONFIG})
    assert ledger.verdict(run, CONFIG).state == "resume"  # a checkpoint left: still under way
    (run / "checkpoint.pt").unlink()
    done = ledger.verdict(run, CONFIG)
    assert (done.state, done.metrics) == ("finished", {"test_acc": 1.0})
    longer = ledger.verdict(run, CONFIG | {"epochs": 5})  # a finished run of other epochs is another run
    assert (longer.state, longer.reason) == ("stale", "it holds a finished run with different epochs")
    (run / "history.csv").unlink()
    assert ledger.verdict(run, CONFIG) == ledger.Verdict("damaged", "its finished run lacks history.csv", None, ANY)
    _write(run, code_json={"code_version": "0ld"})
    old = ledger.verdict(run, CONFIG)
    assert old.state == "stale" and "trained under results version '0ld', and this code computes" in old.reason
    (run / "code.json").unlink()
    assert "records no results version" in ledger.verdict(run, CONFIG).reason
    _write(run, config_json=CONFIG | {"lr": 0.5})  # both differ: the config is named first
    assert ledger.verdict(run, CONFIG).reason.startswith(
        "its config.json was written with different lr, and it records"
    )
    _write(tmp_path, config_json="[1]", code_json=code)
    assert ledger.verdict(tmp_path, CONFIG).reason == f"{tmp_path / 'config.json'} is missing or not a config mapping"
    assert ledger.verdict(tmp_path / "config.json", CONFIG).state == "damaged"  # a file


def test_train_resume_refuses_a_run_of_another_results_version(small_config, monkeypatch, one_thread):
    """`rlaux train --resume` (and a new run over it) refuses, naming both versions; the run stays as it was."""
    from rlaux.training import train

    cfg = small_config(epochs=1, train_size=300)
    train(cfg)
    assert json.loads((cfg.out / "code.json").read_text()) == ledger.code_record("single")  # every run records it
    before = {p.name: p.read_bytes() for p in cfg.out.iterdir()}
    monkeypatch.setitem(run_identity.RESULTS_VERSIONS, "baseline", "next")
    with pytest.raises(CheckpointMismatch, match=r"trained under results version '\w+', and this code computes 'next'"):
        train(cfg, resume=True)
    with pytest.raises(CheckpointError, match=r"already holds another run's files .*nothing was changed"):
        train(cfg)
    assert {p.name: p.read_bytes() for p in cfg.out.iterdir()} == before


@pytest.fixture
def tiny(tmp_path, monkeypatch, data_root) -> Path:
    profile = {"seeds": 1, "settings": {"epochs": 1, "width": 0.0625, "device": "cpu", "progress": False}}
    params = {
        "profile": "tiny",
        "seed_pool": [0],
        "profiles": {"tiny": profile | {"datasets": {"cifar10": {"train_size": 150, "test_size": 50}}}},
        "experiments": {"c10-single": {"dataset": "cifar10", "method": "single", "data_root": str(data_root)}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_dispatched_task_retrains_a_run_of_another_results_version(tiny, monkeypatch, one_thread):
    """`rlaux dispatch`'s Ray task (called here without Ray) keeps its own finished run and retrains a stale one."""
    from rlaux.dispatch import train_one

    first = train_one(str(tiny), "params.yaml", "tiny", "c10-single", 0, 1)
    history = Path(first["run"], "history.csv")
    stamp = history.stat().st_mtime_ns
    assert train_one(str(tiny), "params.yaml", "tiny", "c10-single", 0, 1)["metrics"] == first["metrics"]
    assert history.stat().st_mtime_ns == stamp  # kept
    monkeypatch.setitem(run_identity.RESULTS_VERSIONS, "baseline", "next")
    assert train_one(str(tiny), "params.yaml", "tiny", "c10-single", 0, 1)["metrics"] == first["metrics"]
    assert history.stat().st_mtime_ns != stamp  # retrained (the same seed gives the same numbers)
    assert json.loads(Path(first["run"], "code.json").read_text()) == {"code_version": "next"}


def _accuracy_gates(monkeypatch, repo: Path):
    spec = importlib.util.spec_from_file_location("gates", REPO / "benchmarks" / "test_accuracy.py")
    assert spec is not None and spec.loader is not None
    gates = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gates)
    monkeypatch.setattr(gates, "REPO", repo)
    monkeypatch.setattr(gates, "train", lambda cfg: {gates.METRIC: -1.0})  # "trained here"
    return gates


def test_the_accuracy_gates_reuse_only_the_same_run(tmp_path, monkeypatch):
    """benchmarks/test_accuracy.py reads the smoke pipeline's run only when the ledger finds it finished under this
    results version, config and data; otherwise it trains its own."""
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    gates = _accuracy_gates(monkeypatch, tmp_path)
    cfg = gates.smoke_config("c10-single")
    run = tmp_path / cfg.out
    snapshot = cfg.snapshot()
    _write(run, code_json=ledger.code_record("single"), config_json=snapshot, history_csv="epoch\n1\n")
    _write(run, metrics_json={gates.METRIC: 42.0, "config": snapshot})
    assert gates.measured(cfg, None) == 42.0
    _write(run, metrics_json={gates.METRIC: 42.0, "config": snapshot | {"data_sha256": "0" * 64}})
    assert gates.measured(cfg, _tmp_factory(tmp_path)) == -1.0  # another data file: trained here
    _write(run, metrics_json={gates.METRIC: 42.0, "config": snapshot}, code_json={"code_version": "0ld"})
    assert gates.measured(cfg, _tmp_factory(tmp_path)) == -1.0  # another results version: trained here


def _tmp_factory(tmp_path: Path):
    class Factory:
        def mktemp(self, name: str) -> Path:
            return tmp_path / name

    return Factory()


def test_a_run_records_the_device_it_resolved(small_config, tiny, one_thread):
    """`device: auto` is recorded as the device the run resolved (here the CPU), so the same config on a GPU machine
    is another run; a train stage of an auto profile resolves it the same way and keeps its own finished run."""
    from rlaux.experiments import run_experiment
    from rlaux.training import train

    cfg = small_config(epochs=1, train_size=150, device="auto")
    train(cfg)
    assert json.loads((cfg.out / "config.json").read_text())["device"] == "cpu"
    assert ledger.verdict(cfg.out, cfg.model_copy(update={"device": "cpu"}).snapshot()).state == "finished"
    assert ledger.verdict(cfg.out, cfg.model_copy(update={"device": "cuda"}).snapshot()).state == "stale"
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["profiles"]["tiny"]["settings"]["device"] = "auto"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    first = run_experiment("c10-single")[0]
    run = Path("runs/tiny/c10-single/s0")
    assert json.loads((run / "config.json").read_text())["device"] == "cpu"
    stamp = (run / "history.csv").stat().st_mtime_ns
    assert run_experiment("c10-single")[0] == first and (run / "history.csv").stat().st_mtime_ns == stamp  # kept


def test_a_bump_of_one_method_familys_version_leaves_the_other_families_runs_valid(tmp_path, monkeypatch):
    """A change in RL-AUX's credit bumps the "rl" results version: RL runs are stale, single-task and MAXL runs stay."""
    methods = ("single", "human", "maxl", "wa-maxl", "rl", "wa-rl")
    for method in methods:
        snapshot = CONFIG | {"method": method}
        _write(tmp_path / method, code_json=ledger.code_record(method), config_json=snapshot, history_csv="epoch\n1\n")
        _write(tmp_path / method, metrics_json={"test_acc": 1.0, "config": snapshot})
    monkeypatch.setitem(run_identity.RESULTS_VERSIONS, "rl", "next")
    states = {method: ledger.verdict(tmp_path / method, CONFIG | {"method": method}).state for method in methods}
    assert states == dict.fromkeys(methods[:4], "finished") | {"rl": "stale", "wa-rl": "stale"}
