"""The README's two commands as shell scripts: the data check before the install, and a smoke run that leaves the
checkout as it found it (scripts/check_data.sh, scripts/smoke.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _copy(tmp_path: Path) -> Path:
    """The scripts in a fresh folder: nothing beside it (no ../shared/data), no ./data, no .venv."""
    proj = tmp_path / "proj"
    shutil.copytree(REPO / "scripts", proj / "scripts")
    shutil.copy(REPO / "pyproject.toml", proj / "pyproject.toml")
    return proj


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RLAUX_DATA", "VIRTUAL_ENV")}
    return env | extra


def _offline(env: dict[str, str]) -> dict[str, str]:
    """Every download through a proxy that refuses at once: no internet, whatever the machine has."""
    env = {k: v for k, v in env.items() if k.lower() not in ("no_proxy", "all_proxy")}
    return env | {proxy: "http://127.0.0.1:9" for proxy in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY")}


@pytest.mark.parametrize("script", ["test.sh", "smoke.sh", "mutate.sh"])
def test_no_data_stops_the_script_before_the_install_in_one_line(tmp_path, script):
    proj = _copy(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.monotonic()
    res = subprocess.run(
        ["bash", f"scripts/{script}"],
        cwd=proj,
        env=_env(RLAUX_DATA=str(empty)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - start < 20
    assert res.returncode == 2 and res.stdout == "", res.stderr
    assert res.stderr.count("\n") == 1 and f"error: no CIFAR data under RLAUX_DATA={empty}" in res.stderr
    assert "point RLAUX_DATA at a folder holding them" in res.stderr
    assert not (proj / ".venv").exists() and not (proj / "data").exists()

    # unset, with nothing beside the project, no ./data and no internet: the same, naming the fix
    start = time.monotonic()
    res = subprocess.run(
        ["bash", f"scripts/{script}"], cwd=proj, env=_offline(_env()), capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - start < 30
    assert res.returncode == 2 and res.stdout == "", res.stderr
    assert res.stderr.count("\n") == 1 and "error: no CIFAR data and no internet: RLAUX_DATA is unset" in res.stderr
    assert "set RLAUX_DATA to a folder holding subsets/cifar10.npz and cifar100.npz" in res.stderr
    assert not (proj / ".venv").exists() and not (proj / "data").exists()


@pytest.mark.parametrize(
    "files",
    [
        ["subsets/cifar10.npz", "subsets/cifar100.npz"],
        ["cifar-10-batches-py/data_batch_1", "cifar-100-python/train"],
    ],
)
def test_the_data_check_lets_a_data_root_with_cifar_through(tmp_path, files):
    proj = _copy(tmp_path)
    root = tmp_path / "root"
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).touch()
    check = "source scripts/check_data.sh; echo through"
    res = subprocess.run(
        ["bash", "-c", check], cwd=proj, env=_env(RLAUX_DATA=str(root)), capture_output=True, text=True
    )
    assert (res.returncode, res.stdout, res.stderr) == (0, "through\n", "")
    (root / files[1]).unlink()  # half of it is not enough
    res = subprocess.run(
        ["bash", "-c", check], cwd=proj, env=_env(RLAUX_DATA=str(root)), capture_output=True, text=True
    )
    assert res.returncode == 2 and "no CIFAR data under" in res.stderr
    # unset: ./data holding it, or a prepared copy beside the project, is found offline
    shutil.move(root, proj / "data")
    (proj / "data" / files[1]).touch()
    res = subprocess.run(["bash", "-c", check], cwd=proj, env=_offline(_env()), capture_output=True, text=True)
    assert (res.returncode, res.stdout) == (0, "through\n"), res.stderr
    shutil.rmtree(proj / "data")
    (tmp_path / "shared" / "data" / "subsets").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "subsets" / "cifar10.npz").touch()
    res = subprocess.run(["bash", "-c", check], cwd=proj, env=_offline(_env()), capture_output=True, text=True)
    assert (res.returncode, res.stdout) == (0, "through\n"), res.stderr


FAKE_DVC = """#!/usr/bin/env bash
# what `dvc exp run -S profile=smoke` does to the checkout: params.yaml rewritten, dvc.lock and the plans changed
[ "$*" = "exp run -S profile=smoke" ] || { echo "unexpected: dvc $*" >&2; exit 9; }
printf 'profile: smoke\\nseed_pool:\\n- 0\\n' > params.yaml
echo "smoke lock" > dvc.lock
echo '{"profile": "smoke"}' > results/plan/a.json
echo '{}' > results/plan/new.json
rm results/plan/b.json
mkdir -p results/smoke figures/smoke runs/smoke/a
echo x > results/smoke/runs.csv; echo x > figures/smoke/fig04.png; echo x > runs/smoke/a/metrics.json
git add params.yaml dvc.lock results/plan  # DVC stages each stage's files as it goes (left so when it is stopped)
exit "${FAKE_DVC_RC:-0}"
"""


@pytest.fixture
def smoke_checkout(tmp_path):
    """A git checkout with the scripts, a stand-in setup.sh (no install) and a stand-in dvc on PATH."""
    proj = _copy(tmp_path)
    (proj / "scripts" / "setup.sh").write_text('set -euo pipefail\ncd "$(dirname "${BASH_SOURCE[0]}")/.."\n')
    shutil.copy(REPO / ".gitignore", proj / ".gitignore")
    (proj / "params.yaml").write_text("profile: study  # the committed profile\nseed_pool: [0]\n")
    (proj / "dvc.lock").write_text("study lock\n")
    (proj / "results" / "plan").mkdir(parents=True)
    for name in ("a", "b"):
        (proj / "results" / "plan" / f"{name}.json").write_text(f'{{"plan": "{name}"}}\n')
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "dvc").write_text(FAKE_DVC)
    (bin_ / "dvc").chmod(0o755)
    root = tmp_path / "data"
    (root / "subsets").mkdir(parents=True)
    for f in ("cifar10.npz", "cifar100.npz"):
        (root / "subsets" / f).touch()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=proj, check=True)
    subprocess.run(["git", "add", "-A"], cwd=proj, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=proj, check=True)
    env = _env(RLAUX_DATA=str(root), PATH=f"{bin_}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    return proj, env


def _status(proj: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=proj, capture_output=True, text=True).stdout


@pytest.mark.parametrize("staged", [False, True])
@pytest.mark.parametrize("rc", [0, 1])
def test_smoke_run_leaves_the_checkout_as_it_began(smoke_checkout, rc, staged):
    proj, env = smoke_checkout
    (proj / "params.yaml").write_text("profile: study  # the committed profile\nseed_pool: [0, 1]  # my edit\n")
    if staged:
        subprocess.run(["git", "add", "params.yaml"], cwd=proj, check=True)
    before = {p: p.read_bytes() for p in [proj / "params.yaml", proj / "dvc.lock", *(proj / "results/plan").iterdir()]}
    res = subprocess.run(
        ["bash", "scripts/smoke.sh"], cwd=proj, env=env | {"FAKE_DVC_RC": str(rc)}, capture_output=True, text=True
    )
    assert res.returncode == rc, res.stderr
    assert res.stdout.strip().splitlines()[-1] == (
        "smoke.sh: params.yaml, dvc.lock and results/plan/ put back as they were before the run (git status as before)"
    )
    if rc == 0:
        assert "profile:       smoke" in res.stdout and "figures/smoke/fig04.png" in res.stdout
    after = {p: p.read_bytes() for p in [proj / "params.yaml", proj / "dvc.lock", *(proj / "results/plan").iterdir()]}
    assert after == before  # the user's own edit of params.yaml included
    assert _status(proj) == ("M " if staged else " M") + " params.yaml\n"  # that edit only, the outputs git-ignored
    assert (proj / "results" / "smoke" / "runs.csv").is_file() and (proj / "figures" / "smoke" / "fig04.png").is_file()
