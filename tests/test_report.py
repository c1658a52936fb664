"""The report's statistics and words: verdict categories, power, the paper's difference, the claims plot, naming."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import optimize, stats
from test_pipeline import REPO, _synthetic_runs

from rlaux.experiments import load_params
from rlaux.report.claims import VERDICTS, all_claims, claims, last15_name, paper_difference, run_epochs
from rlaux.report.collect import collect
from rlaux.report.figures import SPLIT_GAP, draw, draw_claims, figures, save_figure
from rlaux.report.readme import render
from rlaux.report.stats import holm

RL_VS_SINGLE = ("RL-AUX beats single-task learning", "cifar10")


def _with_difference(diffs: list[float], metric: str = "test_acc_best_val") -> pd.DataFrame:
    """The synthetic study runs with c10-rl = c10-single + diffs[seed] on `metric`."""
    runs = _synthetic_runs()
    single = runs[runs.experiment == "c10-single"].set_index("seed")[metric]
    rl = runs.experiment == "c10-rl"
    runs.loc[rl, metric] = [single[s] + diffs[s] for s in runs.loc[rl, "seed"]]
    return runs


def _row(runs: pd.DataFrame, metric: str = "test_acc_best_val", paper: pd.DataFrame | None = None) -> pd.Series:
    return claims(runs, metric, "study", paper).set_index(["claim", "dataset"]).loc[RL_VS_SINGLE]


def test_verdict_is_holds_reversed_or_inconclusive_never_does_not_hold():
    """On test_acc_best_val the synthetic study tests 2 claims (RL-AUX vs single and vs MAXL; MAXL ties single in
    every seed, which leaves nothing to test)."""
    up, down, spans = [2.0, 2.5, 1.8, 2.2, 2.1], [-2.0, -2.5, -1.8, -2.2, -2.1], [-1.0, 1.0, -0.5, 0.7, 0.1]
    held = _row(_with_difference(up))
    assert held.verdict == f"holds (Holm-adjusted p = {held.p_holm:.2g} across 2 claims)" and held.p_holm < 0.05
    reversed_ = _row(_with_difference(down))
    assert reversed_.verdict.startswith("reversed (") and reversed_.ci95_high < 0 and reversed_.p_holm < 0.05
    row = _row(_with_difference(spans))
    assert row.ci95_low < 0 < row.ci95_high and row.verdict.startswith("inconclusive (")
    assert f"MDE {row.mde_80:.1f} pp" in row.verdict
    # a wrong-direction mean whose interval still spans zero is inconclusive too, not "does not hold"
    wrong = _row(_with_difference([-1.0, 0.5, -2.0, 0.2, -0.4]))
    assert wrong.mean_difference < 0 < wrong.ci95_high and wrong.verdict.startswith("inconclusive (wrong direction")
    table = all_claims(_with_difference(spans), "study")
    assert "does not hold" not in " ".join(table.verdict)
    assert set(table.verdict.str.split().str[0]) <= {*VERDICTS, "not"}  # "not run in this profile"


def test_holm_adjusts_across_the_claims_of_a_metric_and_says_what_the_unadjusted_test_decided():
    """Holm by hand: p = (0.01, 0.04, 0.03) sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06,
    max(0.06, 1 x 0.04) = 0.06: adjusted (0.03, 0.06, 0.06)."""
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []
    # one-sided p 0.039: holds alone, not after adjusting across the 2 claims (two-sided 0.078 x 1 or 2)
    diffs = [1.0, 0.4, -0.2, 1.2, 0.5]
    row = _row(_with_difference(diffs))
    assert row.p_value < 0.05 and row.p_holm >= 0.05 and row.family_size == 2
    assert "holds before adjustment (one-sided p = " in row.verdict and row.verdict.startswith("inconclusive (")
    # and an interval wholly below zero that does not survive the family
    row = _row(_with_difference([-1.0, -0.3, -0.1, -1.2, -0.6]))  # two-sided p 0.034, x 2 claims = 0.068
    assert row.ci95_high < 0 and row.p_holm >= 0.05
    assert "reversed before adjustment (the whole 95% interval is below 0), not after" in row.verdict


def test_minimum_detectable_effect_is_the_familys_at_holms_strictest_step():
    """Two-sided paired t-test at α = 0.05 / 2 (2 claims in the family), power from the noncentral t."""
    diffs = [-1.0, 1.0, -0.5, 0.7, 0.1]
    n, sd = len(diffs), pd.Series(diffs).std()
    crit = stats.t.ppf(1 - 0.05 / 2 / 2, n - 1)

    def power(delta: float) -> float:
        nc = delta / sd * math.sqrt(n)
        return stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)

    expected = optimize.brentq(lambda d: power(d) - 0.8, 1e-6, 3 * sd)
    assert _row(_with_difference(diffs)).mde_80 == pytest.approx(expected, rel=1e-4)


def test_the_t_interval_covers_at_five_seeds_and_a_percentile_bootstrap_would_not():
    """Why the claims show t-intervals only: 4,000 normal samples of 5 (seeded); the t-interval's coverage is
    95% (binomial sd 0.34 pp), the percentile bootstrap's (2,000 resamples each) well below it."""
    rng = np.random.default_rng(0)
    samples = rng.normal(0.0, 1.0, size=(4000, 5))
    half = stats.t.ppf(0.975, 4) * samples.std(axis=1, ddof=1) / math.sqrt(5)
    t_cover = np.mean(np.abs(samples.mean(axis=1)) <= half)
    means = np.take_along_axis(samples[:, None, :], rng.integers(0, 5, (4000, 2000, 5)), axis=2).mean(axis=2)
    low, high = np.quantile(means, [0.025, 0.975], axis=1)
    boot_cover = np.mean((low <= 0) & (high >= 0))
    assert abs(t_cover - 0.95) < 0.015 and boot_cover < 0.90, (t_cover, boot_cover)
    row = _row(_with_difference([-1.0, 1.0, -0.5, 0.7, 0.1]))
    assert "boot95_low" not in row and row.prob_improvement == pytest.approx(3 / 5)


def test_paper_difference_and_whether_our_interval_excludes_it():
    runs = _with_difference([2.0, 2.5, 1.8, 2.2, 2.1], "test_acc_last15")  # mean 2.12, a narrow interval
    paper = pd.DataFrame(
        {
            "figure": [7, 7, 7],
            "experiment": ["c10-single", "c10-rl", "c10-maxl"],
            "metric": ["test_acc_last15"] * 3,
            "value": [80.0, 90.0, 82.1],
            "source": ["x"] * 3,
        }
    )
    row = _row(runs, "test_acc_last15", paper)
    assert row.paper_difference == pytest.approx(10.0) and row.paper_difference_excluded is True
    table = claims(runs, "test_acc_last15", "study", paper).set_index(["claim", "dataset"])
    maxl = table.loc[("MAXL beats single-task learning", "cifar10")]  # the paper's +2.1 vs our +1.0 (no noise)
    assert maxl.paper_difference == pytest.approx(2.1) and maxl.paper_difference_excluded is True
    inside = paper.assign(value=[80.0, 82.12, 82.1])
    assert _row(runs, "test_acc_last15", inside).paper_difference_excluded is False
    assert math.isnan(_row(runs, "test_acc_best_val", paper).paper_difference)  # the paper never reports it
    assert math.isnan(_row(runs, "test_acc_last15", paper[paper.experiment != "c10-rl"]).paper_difference)


def test_claims_forest_plot_is_deterministic(tmp_path):
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    runs = _with_difference([-1.0, 1.0, -0.5, 0.7, 0.1])
    paths = [save_figure(draw_claims(runs, pd.DataFrame(), paper, "study"), tmp_path / f"{i}.png") for i in (0, 1)]
    assert paths[0].stat().st_size > 10_000 and paths[0].read_bytes() == paths[1].read_bytes()
    empty = save_figure(draw_claims(runs.iloc[:0], pd.DataFrame(), paper, "study"), tmp_path / "empty.png")
    assert empty.stat().st_size > 1_000  # no claim has runs: still a figure that says so


def test_a_figure_breaks_its_axis_when_the_papers_values_are_far_above_ours():
    """Ours at ~17% beside the paper's ~75% on one axis would hide our 1 pp differences."""
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    fig4 = next(f for f in figures() if f.paper_figure == 4)
    c10 = _synthetic_runs()
    far = c10[c10.experiment == "c10-single"].assign(experiment="c100-single", dataset="cifar100-20")
    far = pd.concat([far, far.assign(experiment="c100-rl", test_acc_last15=far.test_acc_last15 + 1.0)])
    far = far.assign(test_acc_last15=far.test_acc_last15 - 33.0, test_acc_best_val=far.test_acc_best_val - 33.0)
    axes = [a for a in draw(fig4, far, pd.DataFrame(), paper, "study").axes if a.get_xticks().size]
    assert len(axes) == 2
    top, bottom = sorted(axes, key=lambda a: -a.get_position().y0)
    theirs = paper.loc[(paper.figure == 4) & paper.experiment.isin(fig4.bars), "value"]
    assert top.get_ylim()[0] <= theirs.min() and theirs.max() <= top.get_ylim()[1]
    assert bottom.get_ylim()[0] <= far.test_acc_last15.min() and far.test_acc_last15.max() <= bottom.get_ylim()[1]
    assert bottom.get_ylim()[1] - bottom.get_ylim()[0] < 10  # ours fill their own panel
    near = far.assign(test_acc_last15=theirs.min() - SPLIT_GAP / 2)
    assert len([a for a in draw(fig4, near, pd.DataFrame(), paper, "study").axes if a.get_xticks().size]) == 1


def test_last15_is_named_for_what_it_is():
    assert last15_name([6, 6]) == "mean over all 6 epochs"
    assert last15_name([2, 3]) == "mean over all 2–3 epochs"
    assert last15_name([80, 200]) == last15_name([]) == "last 15 epochs (paper's metric)"
    curves = pd.DataFrame({"experiment": ["a", "a", "b"], "epoch": [1, 2, 1]})
    assert list(run_epochs(pd.DataFrame({"experiment": ["a"]}), curves)) == [2, 1]
    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    for epochs, name in ((6, "mean over all 6 epochs"), (80, "last 15 epochs (paper's metric)")):
        text = render(params, _synthetic_runs().assign(epochs=epochs), paper, REPO / "x", REPO / "y")
        assert f"### test_acc_last15: {name}" in text
        assert ("early epochs included" in text) == (epochs < 15)
    assert "last 15 epochs (paper's metric)" not in render(params, _synthetic_runs(), paper, REPO, REPO)  # 6 epochs


def _answer(text: str) -> str:
    """The answer in detail: the paragraph under the report's opening (`rlaux.report.answer`, tests/test_answer.py)."""
    lines = text.splitlines()
    assert lines[2].startswith("**The answer:** ")  # right under the title
    detail = lines[4]
    assert detail.startswith("**In detail:** ")
    return detail


def test_report_gives_the_answer_first_in_at_most_four_sentences_then_a_verdict_table():
    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    text = render(params, _synthetic_runs(), paper, REPO, REPO)
    answer = _answer(text)
    assert answer.count(". ") + 1 <= 4
    assert "This profile has no positive control (no human auxiliary task was run)" in answer
    assert "Of the 3 claims tested, 2 hold (RL-AUX beats single-task learning, CIFAR-10; RL-AUX matches" in answer
    assert "0 are reversed and 1 is inconclusive after Holm adjustment" in answer
    assert "logged no agent diagnostics" in answer  # no invented reason
    assert "Scale: CIFAR-10: 10,000 training images, VGG16 width 0.125, 6 epochs, 5 seeds." in text
    assert "| claim | CIFAR-10 |\n|---|---|\n" in text
    assert "| RL-AUX beats single-task learning | holds (+0.20) |" in text
    assert text.index("**The answer:**") < text.index("## The claims at a glance") < text.index("## Settings")

    runs = _synthetic_runs()
    diag = {"policy_entropy": math.log(5) - 0.002, "policy_max_prob": 0.21, "kl_from_init": 0.0004}
    diag |= {"sampled_label_entropy": 1.6, "reward_label_component": 0.03, "reward_batch_share": 0.91}
    for col, value in (diag | {"ppo_approx_kl": 0.002}).items():
        runs[col] = runs.method.map({"rl": value})
    text = render(params, runs, paper, REPO, REPO)
    assert (
        "The reward it is given varies little with its labels (the label sets' variance component is 3.0% of the"
        in (_answer(text))
    )
    assert "| c10-rl | rl | uniform (did not move) | almost none | 1.609 | 1.607 ± 0.000 |" in text  # the Agent table
    moved = runs.assign(kl_from_init=runs.kl_from_init * 1000, reward_label_component=runs.reward_label_component * 10)
    text = render(params, moved, paper, REPO, REPO)
    assert "varies measurably with its labels (the label sets' variance component is 30.0% of" in _answer(text)
    assert "| c10-rl | rl | moved | some |" in text
    at_init = runs.assign(policy_entropy=0.3)
    assert "| c10-rl | rl | at its initial policy (did not move) |" in render(params, at_init, paper, REPO, REPO)
    weighted = moved.assign(
        method=moved.method.replace("rl", "wa-rl"), experiment=moved.experiment.replace("c10-rl", "c10-wa-rl")
    )
    text = render(params, weighted, paper, REPO, REPO)
    assert "| c10-wa-rl | wa-rl | moved | some |" in text
    assert "No placebo and no reward probe" in _answer(text)  # WA-RL's probe varies weights too: not its labels'


def test_a_placebo_agent_is_described_as_one_and_set_beside_its_rl_agent():
    """The placebo's reward ignores its actions: the table must not say its reward carried a signal."""
    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    runs = _synthetic_runs()
    placebo = runs[runs.experiment == "c10-rl"].assign(experiment="c10-rl-placebo")
    runs = pd.concat([runs, placebo], ignore_index=True)
    kl = runs.experiment.map({"c10-rl": 1.37, "c10-rl-placebo": 1.27})
    diag = {"policy_entropy": 0.3, "policy_max_prob": 0.9, "kl_from_init": kl, "sampled_label_entropy": 0.5}
    diag |= {"reward_label_component": 0.02, "reward_batch_share": 0.96, "ppo_approx_kl": 0.01}
    for col, value in diag.items():
        runs[col] = value if isinstance(value, pd.Series) else runs.method.map({"rl": value})
    text = render(params, runs, paper, REPO, REPO)
    answer = _answer(text)
    assert "RL-AUX's agent does not beat its placebo, whose reward ignores its actions (+0.00 pp on CIFAR-10)" in answer
    assert (
        "varies little with its labels (the label sets' variance component is 2.0% of" in answer
    )  # the placebo's own probe is not RL-AUX's signal
    assert "| c10-rl | rl | moved | almost none |" in text
    assert "| c10-rl-placebo | rl | moved | none (placebo: by construction) |" in text
    better = runs.assign(test_acc_best_val=runs.test_acc_best_val + runs.experiment.eq("c10-rl") * (3 + runs.seed / 10))
    assert "RL-AUX's agent beats its placebo" in _answer(render(params, better, paper, REPO, REPO))


def test_the_positive_control_is_the_first_sentence():
    """c100-human = c100-single + 3 pp + seed noise (holds) or - 0.5 pp + noise (fails)."""
    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    c10 = _synthetic_runs()
    single = c10[c10.experiment == "c10-single"].assign(experiment="c100-single", dataset="cifar100-20")
    for gain, words in (
        (3.0, "The positive control holds: human labels beat single-task learning on CIFAR-100-20 (+3."),
        (-0.5, "The positive control fails: human labels, the paper's best-documented auxiliary task, do not beat"),
    ):
        human = single.assign(
            experiment="c100-human",
            method="human",
            test_acc_best_val=single.test_acc_best_val + gain + single.seed / 10,
        )
        answer = _answer(render(params, pd.concat([c10, single, human], ignore_index=True), paper, REPO, REPO))
        assert answer.startswith(f"**In detail:** {words}")


def test_answer_covers_each_dataset_and_calls_a_slice_a_slice():
    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    c10 = _synthetic_runs()
    c100 = c10.assign(
        experiment=c10.experiment.str.replace("c10-", "c100-"),
        dataset="cifar100-20",
        test_acc_best_val=c10.test_acc_best_val - 30 + c10.experiment.eq("c10-rl") * -5.0,  # RL-AUX falls back
    )
    text = render(params, pd.concat([c10, c100], ignore_index=True), paper, REPO, REPO)
    assert "2 are reversed (RL-AUX beats single-task learning, CIFAR-100-20; RL-AUX matches MAXL" in _answer(text)
    assert "CIFAR-10: 10,000 training images, VGG16 width 0.125, 6 epochs, 5 seeds" in text
    assert "CIFAR-100-20: a 1,111-image slice (the paper trains on 50,000), VGG16 width 0.125, 40 epochs" in text
    assert "| claim | CIFAR-100-20 | CIFAR-10 |" in text or "| claim | CIFAR-10 | CIFAR-100-20 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| RL-AUX beats single-task learning"))
    assert set(row.strip("| ").split(" | ")[1:]) == {"holds (+0.20)", "reversed (-4.80)"}


def tiny_project(tmp_path, monkeypatch) -> dict:
    """A params.yaml with one seed of c10-single and c10-rl in `tmp_path` (the working directory); returns
    the metrics.json content a finished 2-epoch run would have."""
    params = {
        "profile": "tiny",
        "seed_pool": [0],
        "profiles": {"tiny": {"seeds": 1, "settings": {"epochs": 2}, "datasets": {"cifar10": {}}}},
        "experiments": {
            "c10-single": {"dataset": "cifar10", "method": "single"},
            "c10-rl": {"dataset": "cifar10", "method": "rl"},
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    metrics = {"test_acc_last15": 30, "test_acc_best_val": 31, "test_acc_final": 31, "val_acc_best": 32}
    return metrics | {"precision": 0.3, "recall": 0.3, "f1": 0.3, "epochs": 2}


def test_collect_adds_epochs_and_the_agent_diagnostics(tmp_path, monkeypatch):
    metrics = tiny_project(tmp_path, monkeypatch)
    history = pd.DataFrame({"epoch": [1, 2], "val_acc": [20, 32], "test_acc": [19, 31], "seconds": [1.0, 1.0]})
    agent = {
        "agent/policy_entropy": [1.609, math.nan],  # an epoch that did not log: the last logged value counts
        "agent/max_prob": [0.2, 0.25],
        "agent/kl_from_init": [0.0, 0.01],
        "agent/sampled_label_entropy": [1.6, 1.5],
        "agent/reward_label_share": [0.02, 0.04],
        "agent/reward_batch_share": [0.9, 0.8],
        "rl/ppo_approx_kl": [0.001, 0.003],
    }
    for exp, hist in (("c10-single", history), ("c10-rl", history.assign(**agent))):
        run = tmp_path / "runs" / "tiny" / exp / "s0"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(metrics))
        hist.to_csv(run / "history.csv", index=False)
    runs, _ = collect(load_params(tmp_path / "params.yaml"), tmp_path / "results")
    rl, single = runs.set_index("experiment").loc["c10-rl"], runs.set_index("experiment").loc["c10-single"]
    assert (rl.epochs, rl.policy_entropy, rl.policy_max_prob, rl.kl_from_init) == (2, 1.609, 0.25, 0.01)
    assert rl.sampled_label_entropy == 1.5 and rl.reward_label_share == pytest.approx(0.03)
    assert rl.reward_batch_share == pytest.approx(0.85) and rl.ppo_approx_kl == pytest.approx(0.002)
    assert math.isnan(rl.ppo_clip_fraction) and single[["policy_entropy", "reward_label_share"]].isna().all()
    assert "policy_entropy" in pd.read_csv(tmp_path / "results" / "runs.csv")


def test_a_new_dataset_reaches_the_claims_and_the_report_from_its_facts_alone(tmp_path, monkeypatch):
    """A throwaway dataset, "toy": one row of facts (config.py), its experiments (params.yaml), its entry in the
    report's spec (report.yaml) and, for training, its loader (data.py) are all it takes; neither the claims nor
    the report name datasets themselves."""
    from rlaux.config import DATASET_FACTS, DatasetFacts
    from rlaux.experiments import Params
    from rlaux.report import spec

    monkeypatch.setitem(DATASET_FACTS, "toy", DatasetFacts(10, "Toy-10", "toy", 60_000))
    entry = yaml.safe_load((REPO / "report.yaml").read_text(encoding="utf-8"))
    entry["datasets"]["toy"] = {"claims": ["rl_single", "maxl_single", "rl_maxl"]}  # its entry in the report's spec
    (tmp_path / "report.yaml").write_text(yaml.safe_dump(entry, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(spec, "REPORT_YAML", tmp_path / "report.yaml")
    params = Params.model_validate(
        {
            "profile": "p",
            "seed_pool": [0, 1, 2, 3, 4],
            "profiles": {"p": {"seeds": 5, "settings": {"epochs": 6, "width": 0.125}, "datasets": {"toy": {}}}},
            "experiments": {f"toy-{m}": {"dataset": "toy", "method": m} for m in ("single", "rl", "maxl")},
        }
    )
    c10 = _synthetic_runs()
    runs = c10.assign(experiment=c10.experiment.str.replace("c10-", "toy-"), dataset="toy")
    cl = all_claims(runs)
    toy = cl[(cl.dataset == "toy") & (cl.n > 0)]
    assert set(toy.claim) == {
        "RL-AUX beats single-task learning",
        "MAXL beats single-task learning",
        "RL-AUX matches MAXL (RL >= MAXL - 0.5 pp)",
    }
    assert set(toy.metric) == {"test_acc_last15", "test_acc_best_val"} and (toy.n == 5).all()
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    text = render(params, runs, paper, REPO, REPO)
    assert "Scale: Toy-10: the full training set, VGG16 width 0.125, " in text
    assert "| claim | Toy-10 |" in text and "| RL-AUX beats single-task learning | holds (+0.20) |" in text


def test_two_paired_seeds_are_testable_and_no_spread_has_no_detectable_effect():
    """n = 2, differences 1 and 2: mean 1.5, s = 0.70711, se = 0.5, t = 3 on 1 df; one-sided p = 1/2 - atan(3)/π
    = 0.102416 (two-sided 0.204833); 95% interval 1.5 ± 12.7062 x 0.5. With no spread (s = 0) there is no
    effect size to detect: MDE is undefined, not 0."""
    from rlaux.report.stats import mde, paired_test

    t = paired_test(pd.Series([11.0, 12.0]), pd.Series([10.0, 10.0]))
    assert t["n"] == 2 and t["sd_difference"] == pytest.approx(math.sqrt(0.5))
    assert t["p_value"] == pytest.approx(0.5 - math.atan(3) / math.pi, rel=1e-9)
    assert t["p_two_sided"] == pytest.approx(1 - 2 * math.atan(3) / math.pi, rel=1e-9)
    assert (t["ci95_low"], t["ci95_high"]) == (pytest.approx(1.5 - 6.35310), pytest.approx(1.5 + 6.35310))
    crit, found = stats.t.ppf(0.975, 1), mde(2, math.sqrt(0.5))
    nc = found / math.sqrt(0.5) * math.sqrt(2)  # the power of the two-sided test at the effect it reports: 80%
    assert stats.nct.sf(crit, 1, nc) + stats.nct.cdf(-crit, 1, nc) == pytest.approx(0.8, abs=1e-3)
    assert math.isnan(mde(5, 0.0)) and math.isnan(mde(1, 1.0)) and math.isnan(mde(5, math.nan))
    one_sided = mde(2, math.sqrt(0.5), one_sided=True)  # a registered one-sided claim: 80% power in its direction
    crit = stats.t.ppf(0.95, 1)
    assert stats.nct.sf(crit, 1, one_sided / math.sqrt(0.5) * math.sqrt(2)) == pytest.approx(0.8, abs=1e-3)
    assert one_sided < found


def test_the_authors_randomized_agent_is_in_paper_csv_with_its_source():
    """The authors' Randomized Task (analyze_run.ipynb @664b142 cell 37, not in the paper: 75.70 beside RL-AUX's
    76.19) is an agent never trained with their settings: paper.csv gives it to c100-rl-untrained-asrun, not to our
    placebo (an agent trained on a reward that ignores its actions), so "RL-AUX beats its placebo" has no paper side;
    76.186 (Fig. 4) - 75.70 = 0.486 pp is RL-AUX against the untrained agent. Its row has no figure, and the tables
    say where each number comes from."""
    from rlaux.report.tables import reproduction

    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    assert paper_difference(paper, "c100-rl", "c100-rl-untrained-asrun", "test_acc_last15") == pytest.approx(0.486)
    assert math.isnan(paper_difference(paper, "c100-rl", "c100-rl-placebo", "test_acc_last15"))
    untrained = paper[paper.experiment == "c100-rl-untrained-asrun"].iloc[0]
    assert math.isnan(untrained.figure) and "analyze_run.ipynb @664b142 cell 37" in untrained.source
    assert paper.source[paper.figure == 5].str.contains("@664b142 cell 23").all()
    rep = reproduction(paper, pd.DataFrame()).set_index("experiment")
    row = rep.loc["c100-rl-untrained-asrun"]
    assert row["figure"] == "" and row["source"] == untrained.source


def test_a_failed_control_quotes_the_pre_registered_search():
    """The profile's control fails (-0.5 pp); the search's 3 judged cells at compute 1, 2, 4 gave -2, -1, 0 pp
    (+1 pp per doubling: the paper's 75.525 - 71.864 = +3.661 pp at 2^(2 + 3.661) = 50.6 units); then a cell that
    holds, unconfirmed and confirmed."""
    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    c10 = _synthetic_runs()
    single = c10[c10.experiment == "c10-single"].assign(experiment="c100-single", dataset="cifar100-20")
    human = single.assign(experiment="c100-human", method="human", test_acc_best_val=single.test_acc_best_val - 0.5)
    runs = pd.concat([c10, single, human.assign(test_acc_best_val=human.test_acc_best_val + single.seed / 10)])
    search = pd.DataFrame(
        {
            "stage": ["search"] * 4,
            "profile": ["g1", "g2", "g3", "g4"],
            "compute": [1.0, 2.0, 4.0, 8.0],
            "task_minus_baseline": [-2.0, -1.0, 0.0, math.nan],
            "baseline_p": [0.9, 0.8, 0.5, math.nan],
            "status": ["does not hold"] * 3 + ["not run"],
        }
    )
    answer = _answer(render(params, runs, paper, REPO, REPO, search=search))
    assert (
        ", nor in any of the 3 cells of a pre-registered search up to 4 units of compute (best: g3, +0.00 pp, "
        "one-sided p = 0.5); its trend (+1.0 pp per doubling of compute, 95% CI +1.0 to +1.0) would reach the "
        "paper's +3.66 pp near 51 units (the paper's own scale is 10,000 units), so this assay cannot see" in answer
    )
    flat = search.assign(task_minus_baseline=[-1.0, 0.5, -0.5, math.nan])  # slope +0.25, its interval holds 0
    answer = _answer(render(params, runs, paper, REPO, REPO, search=flat))
    assert "is flat within its interval and points to no scale (the paper's own scale is 10,000 units)" in answer
    holds = search.assign(status=["does not hold", "holds", "does not hold", "not run"])
    answer = _answer(render(params, runs, paper, REPO, REPO, search=holds))
    assert "though a pre-registered search found it holding in g2 (-1.00 pp, one-sided p = 0.8), not yet" in answer
    confirmed = pd.concat(
        [
            holds,
            pd.DataFrame(
                {"stage": ["confirmation"], "profile": ["c"], "task_minus_baseline": [2.5], "status": ["holds"]}
                | {"baseline_p_holm": [0.01]}
            ),
        ]
    )
    answer = _answer(render(params, runs, paper, REPO, REPO, search=confirmed))
    assert "and on that cell's fresh seeds (+2.50 pp, Holm p = 0.01)" in answer


def test_the_answer_ends_with_the_retest_at_the_most_promising_cell():
    """No search cell held; g3 has the largest human - single (0.0 pp), so the re-test sentence names it. The
    placebo claim does not hold (+0.40 pp), 1 of the 2 claims does (on the last-15 metric the placebo claim holds,
    named); fine agreement: the oracle's interval is above chance (0.30 - 0.05 > 0.2), RL-AUX's is not
    (0.21 - 0.02 < 0.2)."""
    from rlaux.report.search import Retest

    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    search = pd.DataFrame(
        {
            "stage": ["search"] * 3,
            "profile": ["g1", "g2", "g3"],
            "compute": [1.0, 2.0, 4.0],
            "task_minus_baseline": [-2.0, -1.0, 0.0],
            "baseline_p": [0.9, 0.8, 0.5],
            "status": ["does not hold"] * 3,
        }
    )
    claims = pd.DataFrame(
        {
            "claim": ["Human labels beat single-task learning", "RL-AUX beats its placebo", "RL-AUX beats its placebo"],
            "metric": ["test_acc_best_val", "test_acc_best_val", "test_acc_last15"],
            "n": [8, 8, 8],
            "mean_difference": [1.5, 0.4, 9.0],
            "ci95_low": [0.5, -0.6, 8.0],
            "ci95_high": [2.5, 1.4, 10.0],
            "p_holm": [0.01, 0.6, 0.001],
            "verdict": ["holds (...)", "inconclusive (...)", "holds (...)"],
        }
    )
    agent = pd.DataFrame(
        {
            "experiment": ["c100-rl", "c100-rl-placebo", "c100-oracle-s100"],
            "fine_agreement": [0.21, 0.2, 0.3],
            "ci95": [0.02, 0.01, 0.05],
            "chance": [0.2] * 3,
            "above_chance": [False, False, True],
        }
    )
    runs = _synthetic_runs()
    answer = _answer(render(params, runs, paper, REPO, REPO, search=search, retest=Retest(claims, agent)))
    assert answer.endswith(
        "Re-tested at the search's most promising cell (g3, 8 fresh seeds), RL-AUX does not beat its placebo "
        "(+0.40 pp, 95% CI -0.60 to 1.40, Holm p = 0.60) and 1 of 2 claims hold (1 of 1 on the last-15-epochs "
        "metric: RL-AUX beats its placebo); sampled labels agree with the fine "
        "labels at RL-AUX 0.21 ± 0.02, placebo 0.20 ± 0.01, oracle reward 0.30 ± 0.05 (oracle reward above "
        "chance; chance 0.20)."
    )
    assert "Re-tested" not in _answer(render(params, runs, paper, REPO, REPO, search=search))
    none_held = Retest(claims.assign(verdict=["holds (...)", "inconclusive (...)", "inconclusive (...)"]), agent)
    answer = _answer(render(params, runs, paper, REPO, REPO, search=search, retest=none_held))
    assert "and 1 of 2 claims hold (0 of 1 on the last-15-epochs metric); sampled labels" in answer
    # a re-test registered at g2 stays at g2 when a later declared rule makes g3 the most promising cell
    moved = Retest(claims.assign(cell="g2"), agent)
    answer = _answer(render(params, runs, paper, REPO, REPO, search=search, retest=moved))
    assert (
        "Re-tested at g2 (8 fresh seeds), the search's most promising cell when the re-test was registered " in answer
    )
    assert "(under today's rules it is g3), RL-AUX does not beat its placebo" in answer


def _smoke_like_runs() -> pd.DataFrame:
    """Two seeds, as the smoke profile runs them: c10-rl = c10-single ± 40 pp (a t-interval on 1 df of ±508 pp and a
    minimum detectable effect far beyond 100 pp), c100-human = c100-single - 30 / + 28 pp (the control fails, its
    interval as wide), and RL-AUX's reward probe at 3.4% and 99.9% (shares in range, printed)."""
    rows = []
    for seed in (0, 1):
        for exp, dataset, method, acc in (
            ("c10-single", "cifar10", "single", 50.0),
            ("c10-rl", "cifar10", "rl", 50.0 + (40.0 if seed == 0 else -40.0)),
            ("c100-single", "cifar100-20", "single", 40.0),
            ("c100-human", "cifar100-20", "human", 40.0 + (-30.0 if seed == 0 else 28.0)),
            ("c100-rl", "cifar100-20", "rl", 41.0 + seed),
        ):
            rl = method == "rl"
            rows.append(
                {"experiment": exp, "seed": seed, "dataset": dataset, "method": method, "lam": 1.0}
                | {"test_acc_last15": acc, "test_acc_best_val": acc, "test_acc_final": acc, "val_acc_best": acc}
                | {
                    "precision": 0.4,
                    "recall": 0.4,
                    "f1": 0.4,
                    "seconds_per_epoch": 2.0,
                    "epochs": 2,
                    "machine": "Test CPU",
                    "finished": "2026-01-01 10:00 UTC",
                }
                | {"policy_entropy": 1.6 if rl else math.nan, "kl_from_init": 0.001 if rl else math.nan}
                | {"reward_label_component": ({"cifar10": 0.034, "cifar100-20": 0.999}[dataset] if rl else math.nan)}
            )
    return pd.DataFrame(rows)


def _search_and_retest():
    from rlaux.report.search import Retest

    search = pd.DataFrame(
        {
            "stage": ["search"] * 3,
            "profile": ["grid-a", "grid-b", "grid-c"],
            "compute": [1.0, 2.0, 4.0],
            "task_minus_baseline": [-2.0, -1.0, 0.0],
            "baseline_p": [0.9, 0.8, 0.5],
            "status": ["does not hold"] * 3,
        }
    )
    claims = pd.DataFrame(
        {
            "claim": ["RL-AUX beats its placebo"],
            "metric": ["test_acc_best_val"],
            "n": [8],
            "mean_difference": [0.4],
            "ci95_low": [-0.6],
            "ci95_high": [1.4],
            "p_holm": [0.6],
            "verdict": ["inconclusive (...)"],
        }
    )
    agent = pd.DataFrame(
        {
            "experiment": ["c100-rl", "c100-oracle-s100"],
            "fine_agreement": [0.21, 0.3],
            "ci95": [0.02, 0.05],
            "chance": [0.2] * 2,
            "above_chance": [False, True],
        }
    )
    return search, Retest(claims, agent)


def _figures(text: str, unit: str) -> list[float]:
    return [float(v.replace("−", "-")) for v in re.findall(rf"([+\-−]?\d+(?:\.\d+)?) ?{re.escape(unit)}", text)]


def test_a_smoke_report_speaks_only_of_its_own_profile_and_prints_no_impossible_figure():
    """Issue 36: the smoke report quoted the study's search and re-test, and printed "differences of 29.4–951.3 pp
    were detectable". The search is the study's (readme.SEARCHED_PROFILE): only the study's report quotes it. No
    difference, interval bound or detectable effect beyond the ±100 pp two accuracies can differ by is printed,
    and no percentage outside [0, 100]."""
    from rlaux.report.readme import SEARCHED_PROFILE

    params = load_params(REPO / "params.yaml")
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    runs, (search, retest) = _smoke_like_runs(), _search_and_retest()
    params.profile = "smoke"
    text = render(params, runs, paper, REPO, REPO, search=search, retest=retest)
    for word in ("search", "Re-tested", "oracle", "grid-", "fresh seeds"):
        assert word not in text, word
    answer = _answer(text)
    assert answer.startswith("**In detail:** The positive control fails: human labels, the paper's best-documented")
    assert "95% CI wider than the possible ±100 pp" in answer  # the control's interval: -1 ± 368 pp
    assert (
        "only true differences of 7.1 pp or more were detectable at 80% power, and for 3 of them, with 2 seeds, no "
        "difference under 100 pp (the most two accuracies can differ by) was detectable." in answer
    )
    assert "variance component is 3.4%–99.9% of the one-step reward probe's variance" in answer  # in range: printed
    rl = all_claims(runs, "smoke", paper).set_index(["claim", "dataset", "metric"])
    row = rl.loc[(*RL_VS_SINGLE, "test_acc_best_val")]
    assert row.mde_80 > 100 and row.ci95_high > 100  # what the report must not print
    assert "no difference under 100 pp was detectable at 80% power with 2 seeds" in row.verdict
    assert f"{row.mde_80:.1f}" not in text and f"{row.ci95_high:.2f}" not in text
    assert "| > 100 |" in text and "(wider than ±100)" in text  # the claims tables' cells
    assert all(abs(v) <= 100 for v in _figures(text, " pp")) and _figures(text, " pp")
    assert all(0 <= v <= 100 for v in _figures(text, "%")) and _figures(text, "%")

    params.profile = SEARCHED_PROFILE  # the same inputs in the study's report: the search's sentences are there
    answer = _answer(render(params, runs, paper, REPO, REPO, search=search, retest=retest))
    assert "nor in any of the 3 cells of a pre-registered search" in answer
    assert "Re-tested at the search's most promising cell (grid-c, 8 fresh seeds)" in answer


def test_a_figure_outside_its_possible_range_is_refused_not_printed():
    from rlaux.report.markdown import ImpossibleFigure, mde_cell, percent, within
    from rlaux.report.readme import _power_clause

    assert within(100.0, 0.0, 100.0, "an accuracy") == 100.0 and math.isnan(within(math.nan, 0.0, 100.0, "x"))
    for value, low, high in ((100.01, 0.0, 100.0), (-0.01, 0.0, 100.0), (-101.0, -100.0, 100.0)):
        with pytest.raises(ImpossibleFigure, match="outside its possible range"):
            within(value, low, high, "a figure")
    assert percent(0.034) == "3.4%" and percent(1.0) == "100.0%"
    with pytest.raises(ImpossibleFigure, match=r"a share = 1\.2 lies outside its possible range"):
        percent(1.2)
    assert (mde_cell(951.3), mde_cell(12.57, ".4g"), mde_cell(math.nan, missing="–")) == ("> 100", "12.57", "–")
    mixed = pd.DataFrame({"mde_80": [2.7, 12.6, 951.3, math.nan], "n": [5, 5, 2, 5]})
    assert _power_clause(mixed) == (
        ": only true differences of 2.7–12.6 pp or more were detectable at 80% power, and for 1 of them, with 2 "
        "seeds, no difference under 100 pp (the most two accuracies can differ by) was detectable"
    )
    assert (
        _power_clause(mixed.iloc[:2]) == ": only true differences of 2.7–12.6 pp or more were detectable at 80% power"
    )
    assert _power_clause(mixed.iloc[2:]) == (
        ": with 2 seeds no difference under 100 pp (the most two accuracies can differ by) was detectable at 80% power"
    )
    assert _power_clause(mixed.iloc[3:]) == ""

    params = load_params(REPO / "params.yaml")
    params.profile = "smoke"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    runs = _smoke_like_runs()
    with pytest.raises(ImpossibleFigure, match=r"reward probe = 1\.2"):  # a share past 100% stops the generator
        render(params, runs.assign(reward_label_component=runs.reward_label_component * 0 + 1.2), paper, REPO, REPO)
    with pytest.raises(ImpossibleFigure, match="test_acc_final"):  # so does an accuracy past 100%
        render(params, runs.assign(test_acc_final=runs.test_acc_final + 60), paper, REPO, REPO)
