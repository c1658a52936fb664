"""What a run read is part of what the run is (issue 34 item 1), the control dataset cifar10-pairs (item 2) and the
momentum switch (item 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rlaux import data_source, experiments, ledger, run_identity
from rlaux.config import build_config
from rlaux.data import CIFAR10_PAIRS, load_splits
from rlaux.errors import CheckpointMismatch, ConfigError, DataFileError
from rlaux.training import train


def _tiny_cifar10(folder: Path, seed: int) -> Path:
    """A 200-image CIFAR-10-shaped archive (its own bytes per seed) in `folder`/subsets."""
    rng = np.random.default_rng(seed)
    arrays = {
        f"x_{split}": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        for split, n in (("train", 200), ("test", 100))
    } | {f"y_{split}": np.arange(n) % 10 for split, n in (("train", 200), ("test", 100))}
    (folder / "subsets").mkdir(parents=True)
    np.savez(folder / "subsets" / "cifar10.npz", **arrays)
    return folder


def _config(root: Path, out: Path, **kw):
    base = dict(dataset="cifar10", epochs=1, width=0.0625, device="cpu", progress=False, data_root=str(root))
    return build_config(base, {"out": str(out)}, kw)


def test_the_committed_slices_keep_the_runs_identity_and_other_data_is_another_run(data_root, tmp_path):
    """A run on the data every committed run read names no data in its identity (plans unchanged); the same config on
    the complete CIFAR-100, or on any other file, is another run, and the refusal names both sources."""
    slice_cfg = data_source.resolve(build_config({"dataset": "cifar100-20", "data_root": str(data_root)}))
    assert slice_cfg.data_sha256 == run_identity.COMMITTED_DATA["cifar100-20"]
    assert "data_sha256" not in run_identity.identity(slice_cfg.snapshot())
    committed = {k: v for k, v in slice_cfg.snapshot().items() if k != "data_sha256"}  # a config.json of before
    assert run_identity.changed_fields(committed, slice_cfg.snapshot()) == []

    other = tmp_path / "other"
    other.mkdir()
    (other / "cifar100.npz").symlink_to(data_root / "subsets" / "cifar10.npz")  # any other bytes
    moved = data_source.resolve(slice_cfg.model_copy(update={"data_root": other, "data_sha256": None}))
    assert moved.data_sha256 == data_source.file_sha256(data_root / "subsets" / "cifar10.npz")
    changed = run_identity.changed_fields(committed, moved.snapshot())
    assert changed == ["data_sha256"]
    message = run_identity.explain(committed, moved.snapshot(), changed)
    assert "the 1,117-image CIFAR-100 slice (subsets/cifar100.npz)" in message
    assert "now the 10,000-image CIFAR-10 subset (subsets/cifar10.npz)" in message


def test_a_pinned_digest_refuses_a_data_root_holding_other_data(data_root):
    cfg = build_config({"dataset": "cifar10", "data_root": str(data_root), "data_sha256": "0" * 64})
    with pytest.raises(DataFileError, match=r"pins data sha256 000000000000.*holds .*cifar10\.npz.*drop data_sha256"):
        data_source.resolve(cfg)
    with pytest.raises(ConfigError, match="data_sha256"):
        build_config({"data_sha256": "not-a-digest"})


def test_resume_refuses_a_checkpoint_trained_on_another_data_file_naming_both(tmp_path, one_thread):
    a, b = _tiny_cifar10(tmp_path / "a", 0), _tiny_cifar10(tmp_path / "b", 1)
    out = tmp_path / "run"
    train(_config(a, out))
    record = json.loads((out / "data.json").read_text())
    sha_a, sha_b = (data_source.file_sha256(root / "subsets" / "cifar10.npz") for root in (a, b))
    assert record["sha256"] == sha_a and record["file"] == str(a / "subsets" / "cifar10.npz")
    assert json.loads((out / "config.json").read_text())["data_sha256"] == sha_a
    with pytest.raises(CheckpointMismatch, match=rf"data \(data sha256 {sha_a[:12]}…, now data sha256 {sha_b[:12]}…\)"):
        train(_config(b, out, epochs=2), resume=True)
    assert train(_config(a, out), resume=True) == {  # the same data: its finished run
        k: v for k, v in json.loads((out / "metrics.json").read_text()).items() if k != "config"
    }


def test_adoption_and_plans_see_the_data(tmp_path, monkeypatch, one_thread):
    """A train stage (and a dispatched task) adopts a finished run only when the data its plan names is what the run
    read; on other data it retrains."""
    import yaml

    a = _tiny_cifar10(tmp_path / "a", 0)
    profile = {"seeds": 1, "settings": {"epochs": 1, "width": 0.0625, "device": "cpu", "progress": False}}
    profile["datasets"] = {"cifar10": {"train_size": 150, "test_size": 50}}
    params = {
        "profile": "tiny",
        "seed_pool": [0],
        "profiles": {"tiny": profile | {"only": ["c10-single"]}},
        "experiments": {"c10-single": {"dataset": "cifar10", "method": "single", "data_root": str(a)}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    first = experiments.run_experiment("c10-single")[0]
    plan = experiments.load_params().plan("c10-single")
    assert plan["runs"][0]["config"]["data_sha256"] == data_source.file_sha256(a / "subsets" / "cifar10.npz")
    cfg = experiments.load_params().run_config("c10-single", 0)
    assert ledger.verdict(cfg.out, cfg.snapshot()).metrics == first
    shutil.rmtree(a)
    b = _tiny_cifar10(tmp_path / "a", 1)  # the same path, other bytes
    moved = experiments.load_params().run_config("c10-single", 0)
    assert moved.data_sha256 != cfg.data_sha256 and b == a
    stale = ledger.verdict(moved.out, moved.snapshot())  # another run: the stage retrains it
    assert stale.state == "stale" and "data (data sha256" in stale.reason
    from rlaux.dispatch import train_one  # `rlaux dispatch`'s Ray task (here without Ray) and the stage retrain it

    run = Path(cfg.out)
    stamp = (run / "history.csv").stat().st_mtime_ns
    train_one(str(tmp_path), "params.yaml", "tiny", "c10-single", 0, 1)
    assert (run / "history.csv").stat().st_mtime_ns != stamp
    recorded = json.loads((run / "data.json").read_text())["sha256"]
    assert recorded == moved.data_sha256 != cfg.data_sha256


def test_a_profile_pins_the_complete_set_by_content_under_the_usual_data_root(data_root):
    """The search's CIFAR-100 cells name the complete set by its sha256; the data root CI uses (slice in subsets/,
    complete set in full/) then reads full/, and a root without it is refused, naming what it holds."""
    full_sha = next(sha for sha, name in run_identity.KNOWN_DATA.items() if "complete CIFAR-100" in name)
    if not (data_root / "full" / "cifar100.npz").is_file():
        pytest.skip("the complete CIFAR-100 is not under the data root")
    cfg = data_source.resolve(
        build_config({"dataset": "cifar100-20", "data_root": str(data_root), "data_sha256": full_sha})
    )
    assert data_source.npz_file("cifar100-20", data_root, True, cfg.data_sha256) == data_root / "full" / "cifar100.npz"
    assert data_source.npz_file("cifar100-20", data_root, True) == data_root / "subsets" / "cifar100.npz"
    with pytest.raises(DataFileError, match=r"pins data sha256 37c87492753e.*holds .*subsets/cifar100\.npz"):
        data_source.resolve(
            build_config({"dataset": "cifar100-20", "data_root": str(data_root / "subsets"), "data_sha256": full_sha})
        )


def test_a_run_on_the_complete_cifar100_records_that_file(data_root, tmp_path, one_thread):
    full = data_root / "full"
    if not (full / "cifar100.npz").is_file():
        pytest.skip(f"the complete CIFAR-100 is not under {full}")
    cfg = build_config(
        dict(dataset="cifar100-20", epochs=1, width=0.0625, device="cpu", progress=False, data_root=str(full)),
        {"train_size": 400, "test_size": 200, "out": str(tmp_path / "run")},
    )
    train(cfg)
    record = json.loads((tmp_path / "run" / "data.json").read_text())
    assert record["file"] == str(full / "cifar100.npz")
    assert run_identity.data_name(record["sha256"]) == "the complete CIFAR-100 (full/cifar100.npz)"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run_identity.identity(saved)["data_sha256"] == record["sha256"]  # not the committed slice: named


def test_the_recorded_image_positions_follow_seed_and_size(data_root):
    base = dict(dataset="cifar10", data_root=str(data_root), train_size=500, test_size=200)
    first, again = (load_splits(build_config(base)) for _ in range(2))
    other = load_splits(build_config(base, {"seed": 1}))
    assert first.train.index_sha256() == again.train.index_sha256() != other.train.index_sha256()
    raw = np.load(data_root / "subsets" / "cifar10.npz")
    assert torch.equal(first.train.x, torch.from_numpy(raw["x_train"][first.train.index.numpy()]).permute(0, 3, 1, 2))


def test_cifar10_pairs_groups_unrelated_classes_and_keeps_the_classes_as_the_human_task(data_root):
    cfg = build_config({"dataset": "cifar10-pairs", "method": "human", "psi": 2, "data_root": str(data_root)})
    splits = load_splits(cfg.model_copy(update={"train_size": 1000}))
    raw = np.load(data_root / "subsets" / "cifar10.npz")
    fine = torch.from_numpy(raw["y_train"])[splits.train.index]
    for pair, classes in enumerate(CIFAR10_PAIRS):
        members = splits.train.y == pair
        assert set(fine[members].tolist()) == set(classes)
        assert sorted(set(splits.train.aux[members].tolist())) == [2 * pair, 2 * pair + 1]  # the block is the pair
    assert sorted(c for pair in CIFAR10_PAIRS for c in pair) == list(range(10))
    with pytest.raises(ConfigError, match="2 human classes per primary class of 'cifar10-pairs'; set psi to 2, not 5"):
        build_config({"dataset": "cifar10-pairs", "method": "human"})
    build_config({"dataset": "cifar10-pairs", "method": "rl", "psi": 2, "rl": {"reward": "oracle"}})  # a human task
    from rlaux.report.claims import claim_list

    claims = claim_list()  # the paper's claims are about the paper's datasets, not the suite's control
    assert claims and {c.dataset for c in claims} == {"cifar100-20", "cifar10", "svhn"}


def test_momentum_is_off_by_default_and_only_a_nonzero_value_enters_the_identity(small_config, one_thread):
    plain = small_config(train_size=300, test_size=100, epochs=1, width=0.0625)
    assert plain.momentum == 0 and "momentum" not in run_identity.identity(plain.snapshot())
    settled = plain.model_copy(update={"momentum": 0.9})
    assert run_identity.changed_fields(plain.snapshot(), settled.snapshot()) == ["momentum"]
    from rlaux.trainer import Trainer

    steps = {}
    for name, cfg in (("plain", plain), ("settled", settled)):
        trainer = Trainer.build(cfg)
        assert trainer.optimizer.param_groups[0]["momentum"] == cfg.momentum
        from rlaux.batch import AuxTargets

        batches = trainer.batches(0)
        for _ in range(2):  # momentum shows from the second step on
            trainer.train_step(trainer.model, trainer.optimizer, next(batches), AuxTargets(None, torch.ones(0)))
        steps[name] = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert not torch.equal(steps["plain"], steps["settled"])
    with pytest.raises(ConfigError, match="momentum"):
        build_config({"momentum": 1.0})
