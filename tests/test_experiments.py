"""A train stage's run directories: kept when they are its own, dropped when another results version or plan made them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlaux import ledger, run_identity
from rlaux.errors import ConfigError
from rlaux.experiments import load_params, run_experiment
from rlaux.ledger import CODE_FILE

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny(tmp_path, monkeypatch, data_root) -> Path:
    """params.yaml with one 1-epoch c10-single run (two seeds in the pool, one in the profile)."""
    params = {
        "profile": "tiny",
        "seed_pool": [0, 1],
        "profiles": {
            "tiny": {
                "seeds": 1,
                "settings": {"epochs": 1, "width": 0.0625, "device": "cpu", "progress": False},
                "datasets": {"cifar10": {"train_size": 300, "test_size": 200}},
                "only": ["c10-single"],
            }
        },
        "experiments": {
            "c10-single": {"dataset": "cifar10", "method": "single", "data_root": str(data_root)},
            "c10-random": {"dataset": "cifar10", "method": "random", "data_root": str(data_root)},
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_stage_keeps_its_own_runs_and_retrains_those_of_another_results_version(tiny, monkeypatch, one_thread):
    run = Path("runs/tiny/c10-single/s0")
    first = run_experiment("c10-single")[0]
    assert json.loads((run / CODE_FILE).read_text()) == {"code_version": run_identity.results_version("single")}
    history = (run / "history.csv").stat().st_mtime_ns
    assert run_experiment("c10-single")[0] == first  # the same code and config: kept, not retrained
    assert (run / "history.csv").stat().st_mtime_ns == history

    (run.parent / "s1").mkdir()  # a seed the plan no longer holds, and a file of another profile's shape
    (run.parent / "inactive.json").write_text("{}")
    monkeypatch.setitem(run_identity.RESULTS_VERSIONS, "baseline", "other-code")
    assert run_experiment("c10-single")[0] == first  # retrained (the same seed gives the same numbers)
    assert (run / "history.csv").stat().st_mtime_ns != history
    assert json.loads((run / CODE_FILE).read_text()) == {"code_version": "other-code"}
    assert sorted(p.name for p in run.parent.iterdir()) == ["s0"]


def test_a_finished_run_is_adopted_without_importing_torch(tiny, one_thread):
    """Adopting a dispatched matrix costs DVC a few file reads per train stage, not a torch import each."""
    first = run_experiment("c10-single")[0]
    adopt = "import json, sys; from rlaux.experiments import run_experiment as r; m = r('c10-single')[0]; "
    adopt += "print(json.dumps([m, 'torch' in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", adopt], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == [first, False]
    cfg = load_params().run_config("c10-single", 0)
    assert ledger.verdict(cfg.out, cfg.snapshot()).state == "finished"
    assert ledger.verdict(cfg.out, cfg.snapshot()).metrics == first
    other = ledger.verdict(cfg.out, cfg.model_copy(update={"lam": 2.0}).snapshot())  # another run
    assert (other.state, other.reason) == ("stale", "it holds a finished run with different lam")
    Path(cfg.out, "checkpoint.pt").touch()  # a run still under way: the checkpoint's own checks decide
    assert ledger.verdict(cfg.out, cfg.snapshot()).state == "resume"


def test_an_inactive_experiment_records_only_that(tiny):
    out = Path("runs/tiny/c10-random")
    (out / "s0").mkdir(parents=True)  # a run from when the profile still ran it
    assert run_experiment("c10-random") == {}
    assert [p.name for p in out.iterdir()] == ["inactive.json"]


def test_a_train_stage_depends_on_its_plan_alone_and_the_plan_names_the_results_version(tiny):
    """dvc.yaml reruns a train stage when its plan changes, and the plan changes with the results version, so
    moving code retrains nothing while a change that moves numbers (and so the version) retrains every run."""
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["do"]["deps"]
    assert deps == ["results/plan/${key}.json"]
    plan = load_params().plan("c10-single")
    assert plan["results_version"] == run_identity.results_version("single")
    assert all(run_identity.LOCAL_FIELDS.isdisjoint(run["config"]) for run in plan["runs"]) and plan["runs"]


def test_committed_lock_is_for_the_committed_profile():
    """A clone's `dvc status` compares dvc.lock with params.yaml: both must be for the committed results."""
    show = ["git", "-C", str(REPO), "show"]
    try:
        params = yaml.safe_load(subprocess.run([*show, "HEAD:params.yaml"], capture_output=True, check=True).stdout)
        lock = yaml.safe_load(subprocess.run([*show, "HEAD:dvc.lock"], capture_output=True, check=True).stdout)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout with params.yaml and dvc.lock committed")
    profile = params["profile"]
    assert lock["stages"]["data"]["params"]["params.yaml"]["profile"] == profile
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", f"results/{profile}", f"paper_tables/{profile}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert f"results/{profile}/runs.csv" in tracked and f"paper_tables/{profile}/README.md" in tracked
    assert load_params(REPO / "params.yaml").profiles[profile].seeds >= 3  # a profile meant to be read


def test_a_clone_of_the_committed_study_is_up_to_date(tmp_path):
    """What a reader of the committed results runs first: `dvc status` on a fresh clone finds nothing to do."""
    clone = tmp_path / "clone"
    try:
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    dvc = Path(sys.executable).with_name("dvc")
    status = subprocess.run([str(dvc), "status"], cwd=clone, capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and "Data and pipelines are up to date" in status.stdout, status.stdout[-2000:]


def test_a_profile_may_draw_its_seeds_from_its_own_pool(tiny):
    """A search and its confirmation on seeds that never met: a profile's seed_pool overrides the global one."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["profiles"]["tiny"] |= {"seeds": 2, "seed_pool": [7, 9]}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    loaded = load_params()
    assert loaded.seeds() == [7, 9] and [s for _, s, _ in loaded.active_runs()] == [7, 9]
    assert loaded.run_config("c10-single", 0) is None  # a global seed is not this profile's
    with pytest.raises(ConfigError, match=r"seed 0 is not in seed_pool \[7, 9\]"):
        run_experiment("c10-single", seed=0)
    params["profiles"]["tiny"]["seeds"] = 3
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="wants 3 seeds but its seed_pool has 2"):
        load_params()
