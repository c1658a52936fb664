"""Bad input is refused in one line, with exit status 2, and leaves every file as it was.

The corruptions are generated, not hand-picked: every kind of file a user hands in (data
archives, YAML configs, params.yaml, checkpoints, run directories) is truncated at seeded
random offsets, has bytes flipped inside its archive members, is replaced by garbage, and
has arrays or keys dropped, renamed, retyped or reshaped. Each case runs the CLI in-process
and checks the message (one line, no traceback, naming the file), the exit status and a
byte-for-byte snapshot of the whole working folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from rlaux.cli import main

REPO = Path(__file__).resolve().parent.parent
SEED = 11  # the corruptions are random but reproducible
TINY = [
    "--dataset",
    "cifar10",
    "--method",
    "single",
    "--epochs",
    "1",
    "--train-size",
    "200",
    "--test-size",
    "50",
    "--width",
    "0.125",
    "--device",
    "cpu",
    "--progress",
    "false",
    "--download",
    "false",
    "--seed",
    "0",
]


# ---------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _no_accidental_training(monkeypatch, data_root, tmp_path):
    """Should a corruption ever be accepted, the run must fail fast rather than train on the real data."""
    monkeypatch.setenv("RLAUX_DATA", str(tmp_path / "no-data-here"))


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under root, files with their hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def assert_refused(argv: list[str], workdir: Path, capsys, *names: str) -> str:
    """`rlaux argv` exits 2 with one line naming `names`, and nothing under workdir changes."""
    before = snapshot(workdir)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert err.startswith("rlaux: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)
    assert snapshot(workdir) == before, "a refused command changed files"
    return err


def zip_member_ranges(blob: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of the stored data of each zip member (what its CRC covers)."""
    ranges = []
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        for info in z.infolist():
            name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26 : info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            if info.compress_size:
                ranges.append((start, start + info.compress_size))
    return ranges


def byte_corruptions(blob: bytes, rng: random.Random, archive: bool) -> dict[str, bytes]:
    """Truncations at random offsets, flipped bytes (inside archive members), garbage, emptiness."""
    out = {"empty": b"", "garbage": rng.randbytes(len(blob))}
    for _i in range(3):
        cut = rng.randrange(1, len(blob))
        out[f"truncated@{cut}"] = blob[:cut]
    ranges = zip_member_ranges(blob) if archive else [(0, len(blob))]
    for _i in range(3):
        start, end = rng.choice(ranges)
        pos = rng.randrange(start, end)
        flipped = bytearray(blob)
        flipped[pos] ^= rng.randrange(1, 256)
        out[f"flipped@{pos}"] = bytes(flipped)
    return out


def _cases(make: Callable[[random.Random], dict[str, object]]) -> list:
    cases = make(random.Random(SEED))
    return [pytest.param(key, value, id=key) for key, value in cases.items()]


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory, data_root) -> Path:
    """A data root with a tiny but valid CIFAR-10 subset (300 train, 100 test images of the real one)."""
    root = tmp_path_factory.mktemp("data")
    with np.load(Path(data_root) / "subsets" / "cifar10.npz") as d:
        keep = {
            s: np.concatenate([np.flatnonzero(d[f"y_{s}"] == c)[:n] for c in range(10)])
            for s, n in (("train", 30), ("test", 10))
        }
        arrays = {f"{k}_{s}": d[f"{k}_{s}"][keep[s]] for s in keep for k in ("x", "y")}
    (root / "subsets").mkdir()
    np.savez(root / "subsets" / "cifar10.npz", **arrays)
    return root


@pytest.fixture(scope="module")
def npz_arrays(tiny_root) -> dict[str, np.ndarray]:
    with np.load(tiny_root / "subsets" / "cifar10.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_root) -> Path:
    """One real run killed after its first of 2 epochs (all run files, a checkpoint to resume),
    reused by every checkpoint and run-directory case."""
    from rlaux import checkpoint

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("trained") / "run"
    save = checkpoint.save

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(checkpoint, "save", save_then_die)
        main(["train", *TINY, "--epochs", "2", "--data-root", str(tiny_root), "--out", str(out)])
    assert {p.name for p in out.iterdir()} >= {"checkpoint.pt", "best.pt", "history.csv", "config.json"}
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


def resume_argv(root: Path, run: Path, *extra: str) -> list[str]:
    return ["train", *TINY, "--data-root", str(root), "--out", str(run), "--resume", *extra]


# ---------------------------------------------------------------- data files
def _npz_bytes_cases(rng: random.Random) -> dict[str, object]:
    arrays = {
        "x_train": np.zeros((20, 32, 32, 3), np.uint8),
        "y_train": np.arange(20) % 10,
        "x_test": np.zeros((10, 32, 32, 3), np.uint8),
        "y_test": np.arange(10),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return byte_corruptions(buf.getvalue(), rng, archive=True)


def _npz_array_cases(rng: random.Random) -> dict[str, object]:
    """Functions turning the valid arrays into invalid ones."""

    def key(prefix):
        return rng.choice([f"{prefix}_train", f"{prefix}_test"])

    cases: dict[str, object] = {}
    k = key(rng.choice("xy"))
    cases[f"drop-{k}"] = lambda a, k=k: {n: v for n, v in a.items() if n != k}
    k = key(rng.choice("xy"))
    cases[f"rename-{k}"] = lambda a, k=k: {(n + "_old" if n == k else n): v for n, v in a.items()}
    k = key("x")
    dtype = rng.choice([np.float32, np.int64, np.uint16])
    cases[f"dtype-{k}-{np.dtype(dtype).name}"] = lambda a, k=k, t=dtype: a | {k: a[k].astype(t)}
    cases[f"channels-first-{k}"] = lambda a, k=k: a | {k: a[k].transpose(0, 3, 1, 2).copy()}
    cases[f"grey-{k}"] = lambda a, k=k: a | {k: a[k][..., 0]}
    cases[f"empty-{k}"] = lambda a, k=k: a | {k: a[k][:0], "y" + k[1:]: a["y" + k[1:]][:0]}
    k = key("y")
    cases[f"float-labels-{k}"] = lambda a, k=k: a | {k: a[k].astype(np.float32)}
    shift = rng.choice([10, 90, -1 - rng.randrange(5)])
    cases[f"labels{shift:+d}-{k}"] = lambda a, k=k, s=shift: a | {k: a[k] + s}
    cases[f"short-{k}"] = lambda a, k=k: a | {k: a[k][: -1 - rng.randrange(5)]}
    cases[f"2d-{k}"] = lambda a, k=k: a | {k: a[k][:, None]}
    return cases


@pytest.mark.parametrize("case, blob", _cases(_npz_bytes_cases))
def test_damaged_data_archive_is_refused(tmp_path, capsys, case, blob):
    npz = tmp_path / "data" / "subsets" / "cifar10.npz"
    npz.parent.mkdir(parents=True)
    npz.write_bytes(blob)
    argv = ["train", *TINY, "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
    assert_refused(argv, tmp_path, capsys, str(npz))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case, change", _cases(_npz_array_cases))
def test_wrong_arrays_in_data_file_are_refused(tmp_path, capsys, npz_arrays, case, change):
    npz = tmp_path / "data" / "subsets" / "cifar10.npz"
    npz.parent.mkdir(parents=True)
    np.savez(npz, **change(dict(npz_arrays)))
    argv = ["train", *TINY, "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
    err = assert_refused(argv, tmp_path, capsys, str(npz))
    assert "x_" in err or "y_" in err  # names the array
    assert not (tmp_path / "run").exists()


def test_cifar100_file_under_the_cifar10_name_is_refused_by_label_range(tmp_path, capsys, data_root):
    with np.load(Path(data_root) / "subsets" / "cifar100.npz") as d:
        arrays = {k: d[k][:200] for k in ("x_train", "y_train", "x_test", "y_test")}
    npz = tmp_path / "data" / "cifar10.npz"
    npz.parent.mkdir()
    np.savez(npz, **arrays)
    argv = ["train", *TINY, "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
    assert_refused(argv, tmp_path, capsys, str(npz), "10 classes")


@pytest.mark.parametrize(
    "dataset, layout",
    [
        ("cifar10", "cifar-10-batches-py/data_batch_1"),
        ("cifar100-20", "cifar-100-python/train"),
        ("svhn", "train_32x32.mat"),
    ],
)
def test_incomplete_torchvision_layout_names_folder_and_fix(tmp_path, capsys, dataset, layout):
    root = tmp_path / "data"
    (root / layout).parent.mkdir(parents=True, exist_ok=True)
    (root / layout).write_bytes(random.Random(SEED).randbytes(1000))
    argv = [
        "train",
        *TINY,
        "--dataset",
        dataset,
        "--method",
        "single",
        "--offline-subsets",
        "false",
        "--data-root",
        str(root),
        "--out",
        str(tmp_path / "run"),
    ]
    err = assert_refused(argv, tmp_path, capsys, "incomplete or corrupted", "delete", "--data-root")
    assert Path(layout).name in err


def test_data_root_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "data").write_text("not a folder")
    argv = ["train", *TINY, "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
    assert_refused(argv, tmp_path, capsys, str(tmp_path / "data"), "not a folder")


def test_sizes_larger_than_the_data_are_refused(tmp_path, capsys, tiny_root):
    argv = ["train", *TINY, "--data-root", str(tiny_root), "--out", str(tmp_path / "run")]
    assert_refused([*argv, "--train-size", "5000"], tmp_path, capsys, "train_size", "300")
    assert_refused([*argv, "--train-size", "10"], tmp_path, capsys, "train_size", "validation")
    assert_refused([*argv, "--test-size", "101"], tmp_path, capsys, "test_size", "100")


# ---------------------------------------------------------------- YAML configs
GOOD_YAML = "dataset: cifar10\nmethod: maxl\nepochs: 1\nlr: 0.02\nmaxl:\n  order: 1\nrl:\n  reset: epoch\n"
BROKEN_SNIPPETS = ["key: [unclosed", "{{", "  - bad: indent\n x:", "a: b: c", "\t- tab", "'quote", "lr: 0.1\n  lr: 2"]


def _yaml_cases(rng: random.Random) -> dict[str, object]:
    lines = GOOD_YAML.splitlines()
    cases: dict[str, object] = {}
    for snippet in rng.sample(BROKEN_SNIPPETS, 4):  # unparseable: a broken line at a random place
        at = rng.randrange(len(lines) + 1)
        cases[f"syntax@{at}:{snippet[:6]!r}"] = "\n".join([*lines[:at], snippet, *lines[at:]]) + "\n"
    for _i in range(3):  # unknown keys: a known key with a typo
        line = rng.choice([ln for ln in lines if ":" in ln and not ln.endswith(":")])
        key, rest = line.split(":", 1)
        pos = rng.randrange(len(key.strip()))
        typo = key[: len(key) - len(key.lstrip())] + key.strip()[:pos] + "x" + key.strip()[pos + 1 :]
        cases[f"unknown-key-{typo.strip()}"] = GOOD_YAML.replace(line, f"{typo}:{rest}")
    for bad in rng.sample(["[1, 2]", "{a: 1}", "'many'", "-3", "0"], 3):  # wrong types / values
        key = rng.choice(["epochs", "lr"])
        cases[f"type-{key}={bad}"] = GOOD_YAML.replace(f"{key}: ", f"{key}: {bad} #")
    cases["not-a-mapping"] = "- dataset\n- cifar10\n"
    cases["section-not-a-mapping"] = GOOD_YAML.replace("maxl:\n  order: 1", "maxl: 3")
    cases["not-utf8"] = GOOD_YAML.encode() + b"\xff\xfe\n"
    return cases


@pytest.mark.parametrize("case, text", _cases(_yaml_cases))
def test_bad_yaml_config_is_refused(tmp_path, capsys, case, text):
    cfg = tmp_path / "my.yaml"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    argv = ["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--download", "false"]
    assert_refused(argv, tmp_path, capsys, str(cfg))


def test_unparseable_yaml_names_the_line(tmp_path, capsys):
    cfg = tmp_path / "my.yaml"
    cfg.write_text("dataset: cifar10\nlr: [0.1\nepochs: 2\n")
    assert_refused(["train", "--config", str(cfg)], tmp_path, capsys, str(cfg), "not valid YAML", "line")


# ---------------------------------------------------------------- params.yaml
def _committed_params() -> str:
    """params.yaml as committed (git's HEAD), not as a pipeline run left it (`dvc exp run -S profile=smoke` rewrites
    the working tree's); the working tree's file only outside a git checkout."""
    try:
        done = subprocess.run(["git", "-C", str(REPO), "show", "HEAD:params.yaml"], capture_output=True, check=True)
        return done.stdout.decode("utf-8")
    except (OSError, subprocess.CalledProcessError):
        return (REPO / "params.yaml").read_text()


def _edit(text: str, old: str, new: str) -> str:
    """text with the first match of the regex `old` replaced; a case whose edit finds nothing is an error, not a
    silent copy of the valid file (which would test nothing and then train)."""
    edited, n = re.subn(old, new, text, count=1, flags=re.MULTILINE)
    assert n == 1, f"params.yaml has no {old!r} to edit"
    return edited


def _params_cases(rng: random.Random) -> dict[str, object]:
    text = _committed_params()
    head = text.index("\nexperiments:")
    cases: dict[str, object] = {}
    for _i in range(3):  # truncated before its experiments: `only` then names unknown ones, or it cannot parse
        cut = rng.randrange(1, head)
        cases[f"truncated@{cut}"] = text[:cut]
    opens = [i for i in range(head, len(text)) if text[i] == "{"]
    for _i in range(2):  # truncated inside an experiment's flow mapping: cannot parse
        cut = rng.choice(opens) + 1 + rng.randrange(5)
        cases[f"truncated-in-mapping@{cut}"] = text[:cut]
    cases["seeds-not-int"] = _edit(text, r"seeds: 2\b", "seeds: two")
    cases["unknown-profile"] = _edit(text, r"^profile: \S+", "profile: smok")  # whichever profile is committed
    cases["unknown-config-key"] = _edit(
        text, re.escape("{dataset: cifar100-20, method: single}"), "{dataset: cifar100-20, methd: single}"
    )
    cases["unknown-top-key"] = text + "\nextra_key: 1\n"
    cases["not-a-mapping"] = "- 1\n- 2\n"
    cases["tab-indent"] = _edit(text, "^  smoke:", "\tsmoke:")
    return cases


@pytest.mark.parametrize("case, text", _cases(_params_cases))
def test_bad_params_yaml_is_refused(tmp_path, capsys, monkeypatch, case, text):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    monkeypatch.chdir(tmp_path)  # runs/ would be created here
    assert_refused(["experiment", "c100-single", "--seed", "0", "--params", str(params)], tmp_path, capsys, str(params))
    assert_refused(
        ["data", "--params", str(params), "--out", str(tmp_path / "data.json")], tmp_path, capsys, str(params)
    )


# ---------------------------------------------------------------- checkpoints (train --resume)
def _edit_state(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        state = torch.load(path, weights_only=False)
        edit(state)
        torch.save(state, path)

    return apply


def _ckpt_semantic_cases(rng: random.Random) -> dict[str, object]:
    dropped = rng.choice(["model", "optimizer", "scheduler", "method", "rng", "history", "epochs_done"])
    renamed = rng.choice(["model", "optimizer", "config", "rng"])

    def reshape(state):
        k = rng.choice(sorted(k for k, v in state["model"].items() if v.ndim >= 1))
        state["model"][k] = torch.zeros(*state["model"][k].shape[:-1], state["model"][k].shape[-1] + 1)

    def retype(state):
        k = rng.choice(sorted(k for k, v in state["model"].items() if v.is_floating_point()))
        state["model"][k] = state["model"][k].double()

    return {
        f"drop-{dropped}": _edit_state(lambda s: s.pop(dropped)),
        f"rename-{renamed}": _edit_state(lambda s: s.update({renamed + "_": s.pop(renamed)})),
        "other-version": _edit_state(lambda s: s.update(format=rng.choice([0, 1, "2"]))),
        "no-version": _edit_state(lambda s: s.pop("format")),
        "reshaped-weight": _edit_state(reshape),
        "retyped-weight": _edit_state(retype),
        "history-mismatch": _edit_state(lambda s: s.update(history=[])),
        "optimizer-garbage": _edit_state(lambda s: s.update(optimizer={"state": 1})),
        "not-a-dict": lambda p: torch.save([1, 2, 3], p),
    }


@pytest.fixture(scope="module")
def ckpt_bytes(trained_run) -> bytes:
    return (trained_run / "checkpoint.pt").read_bytes()


def _ckpt_byte_cases(rng: random.Random) -> dict[str, object]:
    # The offsets depend on the checkpoint's size, so the cases are named here and drawn in the test.
    return {f"bytes-{i}": i for i in range(8)}


@pytest.mark.parametrize("case, index", _cases(_ckpt_byte_cases))
def test_damaged_checkpoint_bytes_are_refused_on_resume(tmp_path, capsys, tiny_root, run_copy, ckpt_bytes, case, index):
    _, blob = sorted(byte_corruptions(ckpt_bytes, random.Random(SEED), archive=True).items())[index]
    (run_copy / "checkpoint.pt").write_bytes(blob)
    assert_refused(resume_argv(tiny_root, run_copy), tmp_path, capsys, str(run_copy / "checkpoint.pt"), "--resume")


@pytest.mark.parametrize("case, edit", _cases(_ckpt_semantic_cases))
def test_wrong_checkpoint_content_is_refused_on_resume(tmp_path, capsys, tiny_root, run_copy, case, edit):
    edit(run_copy / "checkpoint.pt")
    assert_refused(resume_argv(tiny_root, run_copy), tmp_path, capsys, str(run_copy / "checkpoint.pt"))


def test_checkpoint_of_another_config_is_refused_on_resume(tmp_path, capsys, tiny_root, run_copy):
    assert_refused(resume_argv(tiny_root, run_copy, "--lr", "0.5"), tmp_path, capsys, str(run_copy), "lr")


@pytest.mark.parametrize("missing", ["best.pt", "history.csv", "config.json", "checkpoint.pt"])
def test_incomplete_run_directory_is_refused_on_resume(tmp_path, capsys, tiny_root, run_copy, missing):
    (run_copy / missing).unlink()
    assert_refused(resume_argv(tiny_root, run_copy), tmp_path, capsys, str(run_copy), missing)


@pytest.mark.parametrize("case, blob", _cases(lambda rng: {"garbage": rng.randbytes(64), "truncated": b'{"a": '}))
def test_damaged_config_json_is_refused_on_resume(tmp_path, capsys, tiny_root, run_copy, case, blob):
    (run_copy / "config.json").write_bytes(blob)
    assert_refused(resume_argv(tiny_root, run_copy), tmp_path, capsys, str(run_copy / "config.json"))


def test_out_that_is_a_file_is_refused(tmp_path, capsys, tiny_root):
    (tmp_path / "run").write_text("x")
    argv = ["train", *TINY, "--data-root", str(tiny_root), "--out", str(tmp_path / "run")]
    assert_refused(argv, tmp_path, capsys, str(tmp_path / "run"))


# ---------------------------------------------------------------- run directories (rlaux train without --resume)
@pytest.fixture(scope="module")
def finished_run(trained_run, tiny_root, tmp_path_factory) -> Path:
    """The killed run, resumed as a 1-epoch run: a finished run (metrics.json, no checkpoint)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    shutil.copytree(trained_run, run)
    main(resume_argv(tiny_root, run))
    assert (run / "metrics.json").is_file() and not (run / "checkpoint.pt").exists()
    return run


def _foreign(run: Path, keep: tuple[str, ...]) -> None:
    """Leave only `keep` of the run's files, and make them another run's (another lr)."""
    for path in run.iterdir():
        if path.name not in keep:
            path.unlink()
    for name in {"config.json", "metrics.json"} & set(keep):
        data = json.loads((run / name).read_text())
        (data.get("config") or data)["lr"] = 0.5
        (run / name).write_text(json.dumps(data))


RUN_DIRS = {
    "finished": lambda run: None,
    "finished-other-lr": lambda run: _foreign(run, ("config.json", "metrics.json", "best.pt", "history.csv")),
    "config-only": lambda run: _foreign(run, ("config.json",)),
    "history-only": lambda run: _foreign(run, ("history.csv",)),
    "best-only": lambda run: _foreign(run, ("best.pt",)),
    "machine-only": lambda run: _foreign(run, ("machine.json",)),
}


@pytest.fixture
def finished_copy(finished_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "machine.json").write_text('{"cpu": "elsewhere"}\n')
    return run


@pytest.mark.parametrize("case", RUN_DIRS)
def test_a_new_run_never_starts_over_another_run(tmp_path, capsys, tiny_root, finished_copy, case):
    """A re-typed command (same flags, or another lr) into a run directory: refused, every byte kept."""
    RUN_DIRS[case](finished_copy)
    for extra in ([], ["--lr", "0.05"]):
        argv = ["train", *TINY, "--data-root", str(tiny_root), "--out", str(finished_copy), *extra]
        err = assert_refused(argv, tmp_path, capsys, str(finished_copy), "--overwrite", "nothing was changed")
        assert ("--resume" in err) == (case == "finished" and not extra), err  # offered only where it would work


def test_an_unfinished_run_is_kept_and_resume_offered(tmp_path, capsys, tiny_root, run_copy):
    argv = ["train", *TINY, "--epochs", "2", "--data-root", str(tiny_root), "--out", str(run_copy)]
    assert_refused(argv, tmp_path, capsys, "unfinished run", "--resume to continue it", "--overwrite")


def test_resume_and_overwrite_together_are_refused(tmp_path, capsys, tiny_root, run_copy):
    assert_refused([*resume_argv(tiny_root, run_copy), "--overwrite"], tmp_path, capsys, "--resume", "--overwrite")


def test_resume_refuses_a_foreign_config_json_left_before_the_first_checkpoint(tmp_path, capsys, tiny_root, run_copy):
    _foreign(run_copy, ("config.json",))
    assert_refused(resume_argv(tiny_root, run_copy), tmp_path, capsys, str(run_copy), "lr")


def test_overwrite_replaces_every_file_of_the_old_run(tmp_path, tiny_root, finished_copy):
    _foreign(finished_copy, ("config.json", "metrics.json", "best.pt", "history.csv", "machine.json"))
    (finished_copy / "notes.txt").write_text("mine")  # not a run file: kept
    main(["train", *TINY, "--data-root", str(tiny_root), "--out", str(finished_copy), "--overwrite"])
    from rlaux.ledger import CHECKPOINT, CODE_FILE, RUN_FILES

    assert {p.name for p in finished_copy.iterdir()} == {*RUN_FILES, CODE_FILE, "notes.txt"} - {CHECKPOINT}
    assert json.loads((finished_copy / "config.json").read_text())["lr"] == 0.01
    assert json.loads((finished_copy / "metrics.json").read_text())["config"]["epochs"] == 1
    assert json.loads((finished_copy / "machine.json").read_text())["cpu"] != "elsewhere"
    assert (finished_copy / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------- run directories (rlaux evaluate)
def _eval_cases(rng: random.Random) -> dict[str, object]:
    def bytes_of(name: str, how: str) -> Callable[[Path], None]:
        def apply(run: Path) -> None:
            blob = (run / name).read_bytes()
            cases = byte_corruptions(blob, random.Random(f"{SEED}-{name}"), archive=name.endswith(".pt"))
            key = min(k for k in cases if k.startswith(how))
            (run / name).write_bytes(cases[key])

        return apply

    def edit_json(change: Callable[[dict], None]) -> Callable[[Path], None]:
        def apply(run: Path) -> None:
            cfg = json.loads((run / "config.json").read_text())
            change(cfg)
            (run / "config.json").write_text(json.dumps(cfg))

        return apply

    def edit_weights(change: Callable[[dict], None]) -> Callable[[Path], None]:
        def apply(run: Path) -> None:
            weights = torch.load(run / "best.pt")
            change(weights)
            torch.save(weights, run / "best.pt")

        return apply

    def edit_history(change: Callable[[str], str]) -> Callable[[Path], None]:
        def apply(run: Path) -> None:
            (run / "history.csv").write_text(change((run / "history.csv").read_text()))

        return apply

    def first(w):
        return sorted(w)[rng.randrange(len(w))]

    cases: dict[str, object] = {}
    for how in ("truncated", "flipped", "garbage", "empty"):
        cases[f"best.pt-{how}"] = ("best.pt", bytes_of("best.pt", how))
    for how in ("truncated", "garbage"):
        cases[f"config.json-{how}"] = ("config.json", bytes_of("config.json", how))
    cases["best.pt-dropped-key"] = ("best.pt", edit_weights(lambda w: w.pop(first(w))))
    cases["best.pt-reshaped"] = ("best.pt", edit_weights(lambda w: w.update({(k := first(w)): w[k].reshape(-1)[:1]})))
    cases["config.json-unknown-key"] = ("config.json", edit_json(lambda c: c.update(lerning_rate=0.1)))
    cases["config.json-wrong-type"] = ("config.json", edit_json(lambda c: c.update(epochs="many")))
    cases["history.csv-dropped-column"] = ("history.csv", edit_history(lambda t: t.replace("val_acc", "val_ac", 1)))
    cases["history.csv-not-a-number"] = ("history.csv", edit_history(lambda t: t.rstrip("\n") + "x\n"))
    cases["history.csv-not-utf8"] = ("history.csv", lambda run: (run / "history.csv").write_bytes(b"\xff\xfe\x00"))
    for name in ("best.pt", "history.csv", "config.json"):
        cases[f"{name}-missing"] = (name, lambda run, name=name: (run / name).unlink())
    return cases


@pytest.mark.parametrize("case, spec", _cases(_eval_cases))
def test_damaged_run_directory_is_refused_by_evaluate(tmp_path, capsys, tiny_root, run_copy, case, spec):
    name, corrupt = spec
    corrupt(run_copy)
    argv = ["evaluate", str(run_copy), "--data-root", str(tiny_root), "--device", "cpu"]
    err = assert_refused(argv, tmp_path, capsys, str(run_copy / name))
    assert err.endswith(f"; re-run training into {run_copy} (or pass the right run directory)\n"), err


def test_evaluate_of_a_missing_directory_is_refused(tmp_path, capsys):
    assert_refused(["evaluate", str(tmp_path / "nowhere")], tmp_path, capsys, str(tmp_path / "nowhere"))


def test_intact_run_still_resumes_and_evaluates(tmp_path, capsys, tiny_root, run_copy):
    """The checks refuse damage, not good runs: resuming a finished run and evaluating it still work."""
    main(resume_argv(tiny_root, run_copy))
    assert not (run_copy / "checkpoint.pt").exists()  # finished: best.pt, metrics and history stay
    main(resume_argv(tiny_root, run_copy))  # a finished run resumes as done
    trained = json.loads((run_copy / "metrics.json").read_text())
    config = (run_copy / "config.json").read_text()
    # the run's data moved and its device is absent here: --data-root and --device override what config.json says
    moved = json.loads(config) | {"data_root": str(tmp_path / "moved"), "device": "cuda"}
    (run_copy / "config.json").write_text(json.dumps(moved))
    for argv in (["--data-root", str(tiny_root), "--device", "cpu"], []):
        (run_copy / "metrics.json").unlink()
        main(["evaluate", str(run_copy), *argv])
        evaluated = json.loads((run_copy / "metrics.json").read_text())
        # value by value what training wrote: the history's numbers (summarize) and the best checkpoint's test scores
        assert evaluated.keys() == trained.keys() and evaluated["config"] == trained["config"]
        for key, value in trained.items():
            if key != "config":
                assert evaluated[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        assert type(evaluated["best_val_epoch"]) is int and type(evaluated["epochs"]) is int
        (run_copy / "config.json").write_text(config)  # then without overrides: config.json's own data and device


def test_internal_errors_keep_their_traceback(monkeypatch, tmp_path, tiny_root):
    """Only user errors become messages: a bug still raises."""
    import rlaux.training

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(rlaux.training, "build_run", broken)
    with pytest.raises(ZeroDivisionError):
        main(["train", *TINY, "--data-root", str(tiny_root), "--out", str(tmp_path / "run")])
