"""The reproduction pipeline: params.yaml validation, tables, figures, and DVC end to end."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rlaux.errors import ConfigError
from rlaux.experiments import load_params
from rlaux.report.claims import all_claims, claim_list, claims
from rlaux.report.figures import figures, write_figures
from rlaux.report.stats import mean_ci
from rlaux.report.tables import cost, reproduction

REPO = Path(__file__).resolve().parents[1]


def test_params_yaml_validates_and_smoke_matrix_is_as_documented():
    params = load_params(REPO / "params.yaml")  # committed with the study (smoke.sh switches it to smoke while it runs)
    params.profile = "smoke"
    assert params.seeds() == [0, 1]
    assert params.run_config("svhn-rl", 0) is None  # SVHN is paper-only
    assert params.run_config("c10-rl", 2) is None  # third seed is paper-only
    assert params.run_config("c100-maxl-lam2", 0) is None  # λ sweeps are paper-only (not in `only`)
    smoke_rl = params.run_config("c10-rl", 1)
    assert (smoke_rl.width, smoke_rl.rl.n_epochs, smoke_rl.train_size) == (0.125, 1, 4000)
    methods = {cfg.method for _, _, cfg in params.active_runs()}
    assert methods == {"single", "human", "random", "maxl", "wa-maxl", "rl", "wa-rl"}  # every method, once at least
    params.profile = "paper"
    cfg = params.run_config("c100-maxl-lam2", 1)
    assert (cfg.lam, cfg.maxl.lookahead_lambda_one, cfg.seed, str(cfg.out)) == (
        2.0,
        True,
        1,
        "runs/paper/c100-maxl-lam2/s1",
    )
    paper = params.run_config("svhn-wa-rl", 2)
    assert (paper.epochs, paper.width, paper.dataset) == (125, 1.0, "svhn")
    assert params.run_config("c100-rl", 0).epochs == 200 and params.run_config("c10-rl", 0).epochs == 80
    assert {cfg.device for _, _, cfg in params.active_runs()} == {"cuda"}  # never a silent CPU fallback
    assert params.run_config("c10-rl", 3) is None  # the paper profile keeps 3 seeds


def test_study_profile_is_cifar10_and_the_cifar100_slice_with_five_seeds_and_the_controls():
    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    assert params.seeds() == [0, 1, 2, 3, 4]
    active = {exp for exp, _, _ in params.active_runs()}
    c10 = {"single", "random", "random-lam8", "maxl", "wa-maxl", "rl", "wa-rl", "rl-placebo", "single-scale9"}
    c100 = {"single", "human", "random", "maxl", "rl", "rl-placebo"}
    assert active == {f"c10-{e}" for e in c10} | {f"c100-{e}" for e in c100}
    rl = ("c10-rl", "c10-wa-rl", "c10-rl-placebo", "c100-rl", "c100-rl-placebo")
    assert all(params.run_config(e, 0).rl.n_epochs == 10 for e in rl)
    slice_ = params.run_config("c100-human", 3)
    assert (slice_.train_size, slice_.test_size, slice_.epochs, slice_.width) == (1111, None, 40, 0.125)
    assert params.run_config("c100-rl-placebo", 0).rl.placebo
    assert params.run_config("c10-rl-placebo", 0).rl.placebo and not params.run_config("c10-rl", 0).rl.placebo
    assert (
        params.run_config("c10-single-scale9", 0).primary_loss_scale == 1 + params.run_config("c10-random-lam8", 0).lam
    )
    cfg = params.run_config("c10-random-lam8", 4)
    assert (
        cfg.dataset,
        cfg.method,
        cfg.lam,
        cfg.lr,
        cfg.batch_size,
        cfg.focal_gamma,
    ) == ("cifar10", "random", 8.0, 0.01, 100, 2.0)
    assert str(cfg.out) == "runs/study/c10-random-lam8/s4"
    assert params.run_config("c10-rl-asrun", 0) is None and params.run_config("c100-wa-rl", 0) is None
    # as-run = every erratum that can act on a CIFAR-10 RL-AUX run: all but K = B broadcasting,
    # the WA-RL weight scale, the WA-MAXL broadcast and the reset-ablation replay
    from rlaux.config import Errata

    not_applicable = {"broadcast_targets", "weight_scale_8w3", "batch_mean_weights", "reset_replays_first_batch"}
    for exp_id, errata in (
        ("c10-rl-asrun", set(Errata.model_fields) - not_applicable),
        ("c100-rl-asrun", set(Errata.model_fields) - {"batch_mean_weights", "reset_replays_first_batch"}),
    ):
        on = {k for k, v in params.experiments[exp_id]["errata"].items() if v}
        assert on == errata, exp_id


def test_gpu_smoke_profile_runs_every_method_once_at_paper_settings():
    params = load_params(REPO / "params.yaml")
    params.profile = "gpu-smoke"
    runs = params.active_runs()
    assert {cfg.method for _, _, cfg in runs} == {"single", "human", "random", "maxl", "wa-maxl", "rl", "wa-rl"}
    assert len({exp for exp, _, _ in runs}) == len(runs)  # one seed each
    for _, _, cfg in runs:
        assert (cfg.device, cfg.width, cfg.rl.n_epochs, cfg.precision, cfg.channels_last) == (
            "cuda",
            1.0,
            10,
            "fp32",
            False,
        )
    params.profile = "paper"
    assert params.run_config("c10-rl", 0).queue.gpus == 0  # a Ray dispatch starts uses the GPUs it detects


def test_plans_hold_only_the_active_profiles_resolved_config(tmp_path):
    from rlaux.experiments import write_plans

    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paths = write_plans(params, tmp_path)
    assert len(paths) == len(params.experiments)
    before = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in paths}
    plan = json.loads((tmp_path / "c10-rl.json").read_text())
    assert [run["seed"] for run in plan["runs"]] == [0, 1, 2, 3, 4]
    config = plan["runs"][4]["config"]
    assert config["width"] == 0.125 and config["seed"] == 4 and "data_root" not in config
    assert json.loads((tmp_path / "c100-wa-rl.json").read_text())["runs"] == []  # inactive in the study
    params.profiles["smoke"].settings["width"] = 0.5  # another profile's edit leaves every plan as it was
    params.experiments["c100-wa-rl"]["lam"] = 3.0  # so does an edit of an experiment outside the profile
    params.profiles["study"].settings["queue"] = {"gpus": 8, "runs_per_gpu": 4}  # and where the runs queue
    write_plans(params, tmp_path)
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in paths} == before  # not even rewritten


def test_every_paper_number_refers_to_an_experiment():
    params = load_params(REPO / "params.yaml")
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    assert set(paper.experiment) <= set(params.experiments)
    for fig in figures():
        assert set(fig.bars) <= set(params.experiments)


def test_bad_experiment_is_rejected_with_its_id(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["experiments"]["c10-oops"] = {
        "dataset": "cifar10",
        "method": "single",
        "lamda": 2,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"(?s)c10-oops.*lamda"):
        load_params(tmp_path / "params.yaml")
    del params["experiments"]["c10-oops"]
    params["experiments"]["no-dataset"] = {"method": "single"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="'no-dataset' needs a `dataset` key"):
        load_params(tmp_path / "params.yaml")
    params["profile"] = "fast"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="profile 'fast' unknown"):
        load_params(tmp_path / "params.yaml")


def test_mean_ci_is_the_t_interval():
    m, h, n = mean_ci([1.0, 3.0])
    assert (m, n) == (2.0, 2) and h == pytest.approx(12.706204736 * 1.0, rel=1e-6)  # t(0.975, 1) * s / sqrt(2)
    assert math.isnan(mean_ci([5.0])[1])


def _runs(rows):
    return pd.DataFrame(
        rows,
        columns=["experiment", "seed", "test_acc_last15", "precision", "recall", "f1"],
    )


def test_reproduction_verdicts():
    paper = pd.DataFrame(
        {
            "figure": [4, 4, 4],
            "experiment": ["a", "b", "c"],
            "metric": ["test_acc_last15"] * 3,
            "value": [50.0, 90.0, 70.0],
            "source": ["x"] * 3,
        }
    )
    runs = _runs(
        [
            ("a", 0, 49.0, 0, 0, 0),
            ("a", 1, 51.0, 0, 0, 0),
            ("b", 0, 49.0, 0, 0, 0),
            ("b", 1, 51.0, 0, 0, 0),
        ]
    )
    rep = reproduction(paper, runs).set_index("experiment")
    assert rep.loc["a", "verdict"] == "inside" and rep.loc["b", "verdict"] == "outside"
    assert rep.loc["c", "verdict"] == "not run in this profile"
    assert rep.loc["b", "difference"] == pytest.approx(-40.0)


def test_claims_paired_test_in_plain_words():
    rows = []
    for seed, (rl, maxl, human) in enumerate([(60, 50, 70), (61, 50.5, 71), (62, 51, 72), (60.5, 50, 70.2)]):
        rows += [
            ("c100-rl", seed, rl, 0, 0, 0),
            ("c100-maxl", seed, maxl, 0, 0, 0),
            ("c100-human", seed, human, 0, 0, 0),
        ]
    table = claims(_runs(rows), profile="smoke").set_index(["claim", "dataset"])
    assert table.loc[("RL-AUX matches MAXL (RL >= MAXL - 0.5 pp)", "cifar100-20"), "verdict"].startswith("holds (")
    assert table.loc[("RL-AUX beats the human auxiliary task", "cifar100-20"), "verdict"].startswith("reversed (")
    assert table.loc[("WA-RL beats RL-AUX", "cifar100-20"), "verdict"] == "not run in this profile"
    assert (table.profile == "smoke").all() and (table.metric == "test_acc_last15").all()


def test_cifar10_claims_of_the_study_are_all_there():
    c10 = {(c.text, c.better, c.worse, c.margin) for c in claim_list() if c.dataset == "cifar10"}
    assert c10 == {
        ("RL-AUX beats single-task learning", "c10-rl", "c10-single", 0.0),
        ("RL-AUX beats fixed random in-block labels", "c10-rl", "c10-random", 0.0),
        ("RL-AUX beats its placebo", "c10-rl", "c10-rl-placebo", 0.0),
        ("Random labels at λ = 8 beat the loss-scale control", "c10-random-lam8", "c10-single-scale9", 0.0),
        ("RL-AUX matches MAXL (RL >= MAXL - 0.5 pp)", "c10-rl", "c10-maxl", 0.5),
        ("MAXL beats single-task learning", "c10-maxl", "c10-single", 0.0),
        ("WA-RL beats RL-AUX", "c10-wa-rl", "c10-rl", 0.0),
        ("WA-MAXL beats MAXL", "c10-wa-maxl", "c10-maxl", 0.0),
        (
            "WA-RL's gain is more than a constant λ (WA-RL > constant-λ control)",
            "c10-wa-rl",
            "c10-random-lam8",
            0.0,
        ),
    }
    params = load_params(REPO / "params.yaml")
    assert {e for c in claim_list() for e in (c.better, c.worse) if not e.startswith("best:")} <= set(
        params.experiments
    )


def _synthetic_runs() -> pd.DataFrame:
    """c10-rl beats c10-single by exactly +2 pp on last15 (seed noise cancels in the pairs), ties on best_val."""
    rows = []
    for seed, noise in enumerate([0.0, 1.0, -1.0, 0.5, -0.5]):
        for exp, method, acc, spe in (
            ("c10-single", "single", 50.0, 2.0),
            ("c10-rl", "rl", 52.0, 27.0),
            ("c10-maxl", "maxl", 51.0, 18.0),
        ):
            rows.append(
                {
                    "experiment": exp,
                    "seed": seed,
                    "dataset": "cifar10",
                    "method": method,
                    "lam": 1.0,
                    "test_acc_last15": acc + noise + (0.1 * seed if exp == "c10-rl" else 0.0),
                    "test_acc_best_val": 50.0 + noise + (0.1 * seed if exp == "c10-rl" else 0.0),
                    "test_acc_final": acc,
                    "val_acc_best": acc,
                    "precision": 0.5,
                    "recall": 0.5,
                    "f1": 0.5,
                    "seconds_per_epoch": spe + (0.5 if seed % 2 else -0.5) * (exp != "c10-single"),
                    "in_block": 0.9 if method == "rl" else (0.2 if method == "maxl" else math.nan),
                    "label_entropy": 1.2 if method != "single" else math.nan,
                    "nmi": math.nan,
                    "machine": "Test CPU; no GPU; torch 2; python 3.11",
                    "finished": f"2026-01-0{seed + 1} 10:00 UTC",
                }
            )
    return pd.DataFrame(rows)


def test_claims_on_both_metrics_with_interval_and_p_value():
    from scipy import stats

    runs = _synthetic_runs()
    table = all_claims(runs, "study").set_index(["claim", "dataset", "metric"])
    row = table.loc[("RL-AUX beats single-task learning", "cifar10", "test_acc_last15")]
    diff = [2.0 + 0.1 * s for s in range(5)]  # the paired differences, by construction
    assert row.n == 5 and row.mean_difference == pytest.approx(2.2)
    half = stats.t.ppf(0.975, 4) * pd.Series(diff).std() / math.sqrt(5)
    assert (row.ci95_low, row.ci95_high) == (
        pytest.approx(2.2 - half),
        pytest.approx(2.2 + half),
    )
    assert row.p_value == pytest.approx(stats.ttest_1samp(diff, 0.0, alternative="greater").pvalue)
    assert row.p_value < 1e-4 and row.verdict.startswith("holds (Holm-adjusted p = ")
    best = table.loc[("RL-AUX beats single-task learning", "cifar10", "test_acc_best_val")]
    assert best.mean_difference == pytest.approx(0.2) and best.p_value == pytest.approx(
        stats.ttest_1samp([0.1 * s for s in range(5)], 0.0, alternative="greater").pvalue
    )
    assert table.loc[("WA-RL beats RL-AUX", "cifar10", "test_acc_last15"), "verdict"] == "not run in this profile"
    assert (table.profile == "study").all()


def test_cost_ratio_to_single_task_of_the_same_dataset():
    runs = _synthetic_runs()
    runs = pd.concat(
        [
            runs,
            runs.assign(
                experiment=lambda d: d.experiment.str.replace("c10", "c100"),
                dataset="cifar100-20",
                seconds_per_epoch=lambda d: d.seconds_per_epoch * 2,
            ),
        ]
    )
    table = cost(runs).set_index("experiment")
    assert table.loc["c10-single", "seconds_per_epoch"] == pytest.approx(2.0)
    assert table.loc["c10-rl", "seconds_per_epoch"] == pytest.approx(26.5)  # seeds 0..4: -0.5, +0.5, -0.5, +0.5, -0.5
    assert table.loc["c10-rl", "ratio_to_single"] == pytest.approx(26.5 / 2.0)
    assert table.loc["c100-maxl", "ratio_to_single"] == pytest.approx(17.5 / 2.0)  # both doubled: same ratio
    assert table.loc["c10-single", "ratio_to_single"] == pytest.approx(1.0)
    # a run slowed by other work on the machine (a test suite beside the study) does not move the median
    slowed = runs.assign(seconds_per_epoch=runs.seconds_per_epoch.where(runs.seed != 1, runs.seconds_per_epoch * 10))
    assert cost(slowed).set_index("experiment").loc["c10-rl", "seconds_per_epoch"] == pytest.approx(26.5)
    assert "threads" not in table  # not recorded
    table = cost(runs.assign(threads=runs.seed.map(lambda s: 1.0 if s > 2 else 2.0).where(runs.method == "rl", 2.0)))
    assert table.set_index("experiment").threads.to_dict() == {
        e: ("1/2" if "rl" in e else "2") for e in table.experiment
    }


def test_report_has_every_section(tmp_path):
    from rlaux.report.readme import write_report

    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    out = tmp_path / "paper_tables" / "study"
    text = write_report(params, _synthetic_runs(), paper, out, tmp_path / "figures" / "study").read_text()
    for heading in (
        "# RL-AUX reproduction: profile `study`",
        "## Settings",
        "## Machine and date",
        "## Figures",
        "## Claims",
        "## Reproduction",
        "## Cost",
        "## Label diagnostics",
        "## Agent diagnostics",
    ):
        assert heading in text
    assert "## The claims at a glance\n\n![claims](../../figures/study/claims.png)" in text
    assert "c10-random-lam8" in text and "width: 0.125" in text  # the settings
    assert "Test CPU; no GPU; torch 2; python 3.11" in text and "2026-01-01 10:00 UTC to 2026-01-05 10:00 UTC" in text
    assert "![Fig. 7](../../figures/study/fig07.png)" in text and "fig04.png" not in text  # only figures with data
    assert "Fig. 8 (SVHN)" in text  # named as not run here
    glance, best_val, last15 = (r for r in text.splitlines() if r.startswith("| RL-AUX beats single-task learning"))
    assert glance == "| RL-AUX beats single-task learning | holds (+0.20) |"  # the answer's verdict table
    assert (
        "| cifar10 | c10-rl vs c10-single | 5 | +0.20 (" in best_val and "holds (Holm-adjusted" in best_val
    )  # headline
    assert "| cifar10 | c10-rl vs c10-single | 5 | +2.20 (" in last15 and "| +3.31 (outside ours) |" in last15
    assert text.index("### Validation-selected test accuracy") < text.index("### test_acc_last15: mean over all 6")
    assert "| c10-rl | cifar10 | rl | 26.50 | 5 | 13.25x |" in text  # the cost table
    assert "| c10-rl | cifar10 | rl | 0.900 ± 0.000 | 1.200 ± 0.000 | – |" in text  # the label diagnostics
    assert "| 7 | c10-rl | test_acc_last15 | 89.32 |" in text  # the reproduction row of Fig. 7


def test_figures_are_written_for_every_paper_figure(tmp_path):
    runs = _runs([(e, s, 50.0 + s, 0.5, 0.5, 0.5) for e in ("c100-single", "c100-rl", "c10-rl") for s in (0, 1)])
    runs["test_acc_best_val"] = runs.test_acc_last15 + runs.experiment.eq("c100-rl")  # the claims plot needs both
    curves = pd.DataFrame(
        [
            {
                "experiment": "c10-rl",
                "seed": s,
                "epoch": ep,
                "val_acc": 40.0,
                "test_acc": 40.0 + ep,
            }
            for s in (0, 1)
            for ep in (1, 2)
        ]
    )
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    paths = write_figures(runs, curves, paper, "smoke", tmp_path)
    assert [p.name for p in paths] == [*(f"fig{n:02d}.png" for n in range(4, 13)), "claims.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    again = write_figures(runs, curves, paper, "smoke", tmp_path / "again")  # same runs, same bytes: DVC sees no change
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


TINY_PARAMS = {
    "profile": "tiny",
    "seed_pool": [0, 1],
    "profiles": {
        "tiny": {
            "seeds": 1,
            "settings": {
                "width": 0.0625,
                "device": "cpu",
                "progress": False,
                "epochs": 1,
                "data_root": "data",  # relative, and git-ignored: absent from DVC's queued copies
            },
            "datasets": {"cifar10": {"train_size": 300, "test_size": 200}},
        },
        "other": {
            "seeds": 2,
            "settings": {
                "width": 0.0625,
                "device": "cpu",
                "progress": False,
                "epochs": 1,
            },
            "datasets": {"cifar10": {"train_size": 300, "test_size": 200}},
            "only": ["c10-single"],
        },
        "paper": {"seeds": 2, "settings": {}, "datasets": {"cifar10": {}}},
    },
    "experiments": {
        "c10-single": {"dataset": "cifar10", "method": "single"},
        "c10-random": {"dataset": "cifar10", "method": "random"},
    },
}


def _sh(cwd: Path, *cmd: str, timeout: int = 600) -> str:
    env = os.environ | {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "RLAUX_DATA": str(os.environ.get("RLAUX_DATA", REPO.parent / "shared" / "data")),
    }
    res = subprocess.run(
        cmd,
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


RECORD_STAGES = ("search", "search_2", "dose_response", "chain_figures")
"""Stages over committed records of their own profiles (runs/grid-*, runs/oracle, runs/chain-*), whatever the active
profile."""


@pytest.fixture
def tiny_project(tmp_path, data_root):
    """A copy of the pipeline (code, dvc.yaml, paper numbers) with a two-run params.yaml, as a git+DVC repo."""
    proj = tmp_path / "proj"
    shutil.copytree(REPO / "rlaux", proj / "rlaux", ignore=shutil.ignore_patterns("__pycache__"))
    for f in (
        "paper_tables/paper.csv",
        "paper_tables/searches/positive_control.csv",  # the tables stage quotes it and its re-test
        "paper_tables/searches/positive_control_retest.csv",
        "paper_tables/searches/positive_control_agent.csv",
        "figures/oracle/dose_response.csv",  # the study's answer quotes it (the tables stage depends on it)
        "report.yaml",  # the report's spec
        "pyproject.toml",
        "README.md",
        ".gitignore",
    ):
        (proj / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / f, proj / f)
    # the profile pipeline; the committed records' stages (the search's cells, the oracle runs) stay behind
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for record in RECORD_STAGES:
        del pipeline["stages"][record]
    (proj / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    (proj / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS))
    (proj / "data").symlink_to(data_root)
    _sh(proj, "git", "init", "-q")
    _sh(proj, "dvc", "init", "-q")
    _sh(proj, "dvc", "config", "core.analytics", "false")
    for f in (".dvcignore", ".dvc/plots/by_experiment.json"):  # after `dvc init`, which writes its own
        (proj / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / f, proj / f)
    _sh(proj, "git", "add", "-A")
    _sh(proj, "git", "commit", "-qm", "tiny")
    return proj


@pytest.mark.slow
def test_dvc_repro_end_to_end_then_nothing_to_do_then_queue(tiny_project):
    proj = tiny_project
    first = _sh(proj, "dvc", "repro")
    assert "Running stage 'train@c10-single'" in first and "Running stage 'train@c10-random'" in first
    assert sorted(p.name for p in (proj / "figures" / "tiny").iterdir()) == [
        "claims.png",
        *(f"fig{n:02d}.png" for n in range(4, 13)),
    ]
    assert "c10-single" in (proj / "paper_tables" / "tiny" / "reproduction.md").read_text()
    assert (proj / "paper_tables" / "tiny" / "README.md").is_file()
    assert (proj / "runs" / "tiny" / "c10-single" / "s0" / "machine.json").is_file()
    assert "Running stage" not in _sh(proj, "dvc", "repro")  # second run does nothing
    _sh(proj, "git", "add", "-A")
    _sh(proj, "git", "commit", "-qm", "repro")

    # a clone sees what was committed: its runs are in git, so DVC finds nothing to do and shows the results
    clone = proj.parent / "clone"
    _sh(proj.parent, "git", "clone", "-q", str(proj), str(clone))
    assert "Data and pipelines are up to date" in _sh(clone, "dvc", "status")
    rows = [line.split() for line in _sh(clone, "dvc", "metrics", "show").splitlines() if line.strip()]
    assert rows[0][0] == "Path" and {"test_acc", "last15", "f1", "seeds"} <= set(rows[0])  # ci95: null at 1 seed
    assert sorted(r[0] for r in rows[1:]) == [f"results/tiny/metrics/{e}.json" for e in ("c10-random", "c10-single")]
    assert "index.html" in _sh(clone, "dvc", "plots", "show")
    assert "c10-random" in (clone / "dvc_plots" / "index.html").read_text()
    assert _sh(clone, "git", "status", "--porcelain") == ""  # dvc_plots/ ignored, nothing rewritten

    # scale-out on DVC's own queue: two train stages as queued experiments, two workers
    override = "profiles.tiny.settings.epochs=2"
    for stage in ("train@c10-single", "train@c10-random"):
        _sh(proj, "dvc", "exp", "run", "--queue", "-S", override, stage)
    _sh(proj, "dvc", "queue", "start", "--jobs", "2")
    deadline = time.time() + 420
    while time.time() < deadline:
        status = _sh(proj, "dvc", "queue", "status")
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    # each queued copy committed its runs to its experiment's ref: bring them in, and the workspace run
    # keeps them (same code and config) instead of training again (README: Scale-out)
    for ref in _sh(proj, "git", "for-each-ref", "refs/exps", "--format=%(refname)").split():
        changed = _sh(proj, "git", "diff", "--name-only", "HEAD", ref, "--", "runs/").split()
        _sh(proj, "git", "checkout", ref, "--", *changed)
    kept = {exp: (proj / "runs/tiny" / exp / "s0/history.csv").read_text() for exp in ("c10-single", "c10-random")}
    _sh(proj, "dvc", "exp", "run", "-S", override)
    for exp, history in kept.items():
        assert (proj / "runs/tiny" / exp / "s0/history.csv").read_text() == history
    runs = pd.read_csv(proj / "results" / "tiny" / "runs.csv")
    assert set(runs.experiment) == {"c10-single", "c10-random"}
    for exp in ("c10-single", "c10-random"):  # trained in queued copies: the workspace's data found
        run = proj / "runs" / "tiny" / exp / "s0"
        assert json.loads((run / "config.json").read_text())["data_root"] == str(proj.resolve() / "data")
        assert not (run / "checkpoint.pt").exists()
    assert (runs.seconds_per_epoch > 0).all()
    in_block = runs.set_index("experiment").in_block
    assert in_block["c10-random"] == 1.0 and math.isnan(in_block["c10-single"])  # single-task generates no labels
    assert (proj / "runs" / "tiny" / "c10-random" / "s0" / "history.csv").read_text().count(
        "\n"
    ) == 3  # header + 2 epochs


def _train_stages(status: str) -> list[str]:
    return [line.strip().rstrip(":") for line in status.splitlines() if line.startswith("train@")]


@pytest.mark.slow
def test_editing_another_profile_leaves_trained_runs_up_to_date(tiny_project):
    """Each train stage depends on its own resolved config, not on the whole `profiles` block."""
    proj = tiny_project
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["experiments"]["c10-single"]["lam"] = 1.0  # keeps the run identical, but touches `experiments`
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    _sh(proj, "dvc", "exp", "run", "-S", "profile=other")  # a study-like profile: 2 seeds, only c10-single
    assert (proj / "paper_tables" / "other" / "README.md").is_file()
    assert not (proj / "paper_tables" / "tiny").exists()  # nothing of another profile is written
    assert "Data and pipelines are up to date" in _sh(proj, "dvc", "status")

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["profiles"]["tiny"]["settings"]["epochs"] = 3  # edit the inactive profile and an inactive experiment
    params["profiles"]["paper"]["seeds"] = 1
    params["experiments"]["c10-random"]["lam"] = 2.0
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    assert _train_stages(_sh(proj, "dvc", "status")) == []
    rerun = _sh(proj, "dvc", "repro")  # the plans are rewritten, unchanged: no run trains again
    assert "Running stage 'data'" in rerun and "Running stage 'train@" not in rerun, rerun
    assert _train_stages(_sh(proj, "dvc", "status")) == []

    params["profiles"]["other"]["settings"]["epochs"] = 2  # edit the active profile: its runs are out of date
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    _sh(proj, "dvc", "repro", "--single-item", "data")
    assert _train_stages(_sh(proj, "dvc", "status")) == ["train@c10-single"]


def _sh_fails(cwd: Path, *cmd: str) -> str:
    res = subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True)
    assert res.returncode != 0, f"{' '.join(cmd)} should have failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


@pytest.mark.slow
def test_a_refused_value_leaves_every_tracked_file_as_it_was(tiny_project):
    """A typo in `-S` or in params.yaml is refused by the data stage before anything is written, and costs no tracked
    file: DVC would delete the stage's outputs (the committed plans, data.json) before its cmd (hence `persist`), and a
    failed `dvc exp run` leaves its `-S` in params.yaml (so the stage puts the committed params.yaml back)."""
    proj = tiny_project
    _sh(proj, "dvc", "repro", "--single-item", "data")
    _sh(proj, "git", "add", "-A")
    _sh(proj, "git", "commit", "-qm", "plans")
    assert len(list((proj / "results" / "plan").glob("*.json"))) == 2 and (proj / "results/tiny/data.json").is_file()

    out = _sh_fails(proj, "dvc", "exp", "run", "-S", "profile=tiy")
    assert "rlaux: error: params.yaml: profile 'tiy' unknown; allowed: other, paper, tiny" in out
    assert "rlaux: params.yaml is back as committed (dvc exp run -S profile=tiy had rewritten it)" in out
    assert _sh(proj, "git", "status", "--porcelain") == ""

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["profiles"]["tiny"]["settings"]["width"] = -0.5  # the user's own edit, then `dvc repro`
    edited = yaml.safe_dump(params)
    (proj / "params.yaml").write_text(edited)
    for cmd in (["dvc", "repro"], ["dvc", "exp", "run"]):
        out = _sh_fails(proj, *cmd)
        assert "invalid config: width: got -0.5; input should be greater than 0" in out
        assert _sh(proj, "git", "status", "--porcelain") == " M params.yaml\n"  # the user's edit, and only it
        assert (proj / "params.yaml").read_text() == edited

    # -S over a user's own edit: DVC rewrote the file, so only its key is left to set back by hand, and said so
    out = _sh_fails(proj, "dvc", "exp", "run", "-S", "profile=tiy")
    assert "still holds `dvc exp run -S profile=tiy` beside your own edits" in out and "set profile back by hand" in out
    assert _sh(proj, "git", "status", "--porcelain") == " M params.yaml\n"


def test_the_data_stage_finds_the_data_before_it_writes_anything(tmp_path, capsys):
    from rlaux.cli import main

    params = json.loads(json.dumps(TINY_PARAMS))
    params["profiles"]["tiny"]["settings"] |= {"data_root": str(tmp_path / "no-data"), "download": False}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    plans = tmp_path / "plan"
    plans.mkdir()
    for name in ("c10-single", "gone"):  # a committed plan, and one a successful run would remove
        (plans / f"{name}.json").write_text("as committed\n")
    argv = [
        "data",
        "--params",
        str(tmp_path / "params.yaml"),
        "--out",
        str(tmp_path / "data.json"),
        "--plan",
        str(plans),
    ]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("rlaux: error: dataset 'cifar10' not found under data root"), err
    assert {p.name: p.read_text() for p in plans.iterdir()} == dict.fromkeys(
        ("c10-single.json", "gone.json"), "as committed\n"
    )
    assert not (tmp_path / "data.json").exists()


def test_lock_file_holds_only_the_stages_dvc_yaml_defines():
    """DVC never prunes dvc.lock, and re-parses all of it around every stage it runs: stale entries (the
    old per-seed stages were 134 of 179) made each of the 41 train stages cost ~4.5 s instead of ~1 s."""
    from dvc.repo import Repo

    defined = {stage.addressing for stage in Repo(str(REPO)).index.stages}
    locked = set(yaml.safe_load((REPO / "dvc.lock").read_text())["stages"])
    stale = sorted(locked - defined)
    assert not stale, f"dvc.lock holds stages that dvc.yaml no longer defines: {stale}; delete their entries"
