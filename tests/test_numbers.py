"""Every reported number against a case small enough to check by hand (issue 28).

Each expected value is worked out in the test's docstring or comments from the definitions (and, where a
t-distribution is needed, from its closed form or a printed table value), never by calling the code under
test. The cases are chosen so that the plausible wrong variants give other numbers: macro vs micro vs weighted
averages, the last 15 vs all epochs, the best validation epoch vs the best test epoch or the last one, the pool's
best on validation vs on test, a p-value with and without the margin, paired seeds vs every seed of an arm.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from rlaux.batch import AuxTargets
from rlaux.evaluation import LabelStats, evaluate_epoch, scores, summarize, timing
from rlaux.experiments import load_params
from rlaux.report.claims import all_claims, claim_list, claims, last15_name, paper_difference, pick, run_epochs
from rlaux.report.collect import METRICS, collect, write_metrics
from rlaux.report.stats import mde, mean_ci, paired_test, t_interval
from rlaux.report.tables import cost, reproduction

T975_DF2 = 4.302652729749462  # t-table: 97.5% quantile, 2 degrees of freedom
T975_DF3 = 3.182446305283708  # t-table: 97.5% quantile, 3 degrees of freedom


def t3_upper_tail(t: float) -> float:
    """P(T > t) for Student's t with 3 degrees of freedom, in closed form:
    F(t) = 1/2 + (1/π) (t / (√3 (1 + t²/3)) + arctan(t / √3))."""
    return 0.5 - (t / (math.sqrt(3) * (1 + t * t / 3)) + math.atan(t / math.sqrt(3))) / math.pi


# ---------------------------------------------------------------- macro precision, recall, F1
def test_macro_scores_on_an_imbalanced_case_by_hand():
    """y = 0 0 0 0 0 0 1 1 2 2, pred = 0 0 0 0 0 1 1 0 2 0 (7 of 10 right: acc 70%).

    class 0: predicted 7 times, 5 right, 6 true -> P 5/7, R 5/6, F 2·5/(7+6) = 10/13
    class 1: predicted 2 times, 1 right, 2 true -> P 1/2, R 1/2, F 1/2
    class 2: predicted 1 time,  1 right, 2 true -> P 1,   R 1/2, F 2/3
    macro P = (5/7 + 1/2 + 1)/3 = 31/42, R = (5/6 + 1/2 + 1/2)/3 = 11/18, F = (10/13 + 1/2 + 2/3)/3 = 151/234.
    Others that must not come out: micro P = R = F = 0.7; weighted P = 0.7286, R = 0.7, F = 0.6949; the harmonic
    mean of macro P and R = 0.6686 (not the mean of the per-class F).
    """
    y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 0, 0, 0, 0, 1, 1, 0, 2, 0])
    got = scores(pred, y)
    assert got == {
        "acc": pytest.approx(70.0),
        "precision": pytest.approx(31 / 42),
        "recall": pytest.approx(11 / 18),
        "f1": pytest.approx(151 / 234),
    }
    assert scores(y, y) == {"acc": 100.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}


@pytest.mark.filterwarnings("error")  # 0 by choice (zero_division=0), not sklearn's warning default
def test_a_class_never_predicted_scores_zero_precision():
    """y = 0 0 1 2, pred = 0 0 1 1: class 2 is never predicted, so its precision is 0 (not 1, not skipped).

    P = (1 + 1/2 + 0)/3 = 1/2; R = (1 + 1 + 0)/3 = 2/3; F = (1 + 2/3 + 0)/3 = 5/9; acc 3/4 = 75%.
    """
    got = scores(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 2]))
    assert got == {
        "acc": pytest.approx(75.0),
        "precision": pytest.approx(0.5),
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(5 / 9),
    }


class _Reads(nn.Module):
    """A 'network' whose primary logits are the one-hot of the first input column: it predicts x[:, 0]."""

    def __init__(self) -> None:
        super().__init__()
        self.seen_training: list[bool] = []

    def forward(self, x):
        self.seen_training.append(self.training)
        return nn.functional.one_hot(x[:, 0], 3).float(), None


def test_evaluate_epoch_scores_validation_and_test_in_batches_in_eval_mode():
    """val: predictions 0 1 2 2 for labels 0 1 2 0 -> 3/4 = 75%; test: the case of the first test (70%, macro P
    31/42, R 11/18, F 151/234), read in batches of 3 (4 batches; the last holds one image)."""
    test_y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    test_pred = torch.tensor([0, 0, 0, 0, 0, 1, 1, 0, 2, 0])
    data = SimpleNamespace(
        val=SimpleNamespace(x=torch.tensor([[0], [1], [2], [2]]), y=torch.tensor([0, 1, 2, 0])),
        test=SimpleNamespace(x=test_pred[:, None], y=test_y),
    )
    model = _Reads().train()
    got = evaluate_epoch(model, data, lambda x: x, batch_size=3)
    assert got == {
        "val_acc": pytest.approx(75.0),
        "test_acc": pytest.approx(70.0),
        "test_precision": pytest.approx(31 / 42),
        "test_recall": pytest.approx(11 / 18),
        "test_f1": pytest.approx(151 / 234),
    }
    assert model.seen_training == [False] * 6 and model.training  # 2 + 4 batches in eval mode, then back


# ---------------------------------------------------------------- the epoch metrics of metrics.json
def _history() -> list[dict]:
    """20 epochs: test accuracy = the epoch number (1 .. 20, so it peaks at the last epoch); validation accuracy
    peaks at epoch 7 and again, tied, at epoch 12; each epoch's P/R/F1 say which epoch they came from."""
    val = {7: 60.0, 12: 60.0}
    return [
        {
            "epoch": e,
            "val_acc": val.get(e, 30.0 + e),  # 31 .. 50 elsewhere: below 60
            "test_acc": float(e),
            "test_precision": e / 100,
            "test_recall": e / 200,
            "test_f1": e / 400,
        }
        for e in range(1, 21)
    ]


def test_last15_is_the_mean_of_the_last_15_epochs_and_selection_reads_the_best_validation_row():
    """test_acc_last15 = mean of epochs 6 .. 20 = (6 + 20)/2 = 13 (all 20 epochs: 10.5; the last 14: 13.5; the
    last 16: 12.5). Validation ties at 60 on epochs 7 and 12: the earliest is selected (the declared rule; training
    writes best.pt on a strict `>`), so test_acc_best_val = 7 (not 20, the best test epoch and the last), precision
    0.07, recall 0.035, F1 0.0175 (that row's, not the last row's 0.2 / 0.1 / 0.05)."""
    assert summarize(_history()) == {
        "test_acc_last15": 13.0,
        "test_acc_final": 20.0,
        "test_acc_best_val": 7.0,
        "best_val_epoch": 7,
        "val_acc_best": 60.0,
        "precision": 0.07,
        "recall": 0.035,
        "f1": 0.0175,
        "epochs": 20,
    }


def test_fewer_than_15_epochs_average_them_all_and_a_single_peak_is_selected():
    """The first 4 epochs of the history above: last15 = (1+2+3+4)/4 = 2.5; the best validation epoch is 4 (val
    34, the last). The first 8: last15 = 4.5 and validation peaks once, at epoch 7 (val 60): test 7, F1 0.0175,
    while the last epoch's test accuracy is 8."""
    short = _history()[:4]
    got = summarize(short)
    assert (got["test_acc_last15"], got["best_val_epoch"], got["test_acc_best_val"], got["epochs"]) == (2.5, 4, 4.0, 4)
    got = summarize(_history()[:8])
    assert (got["test_acc_last15"], got["best_val_epoch"], got["test_acc_best_val"]) == (4.5, 7, 7.0)
    assert (got["test_acc_final"], got["val_acc_best"], got["f1"]) == (8.0, 60.0, 7 / 400)


def test_timing_skips_the_warm_up_epoch():
    """Epochs of 10, 2 and 4 s: the first pays for warm-up, so 3 s per epoch and 900 / 3 = 300 images/s; a single
    epoch counts as it is (5 s, 180 images/s)."""
    rows = [{"seconds": s} for s in (10.0, 2.0, 4.0)]
    assert timing(rows, 900, torch.device("cpu")) == {
        "seconds_per_epoch": 3.0,
        "images_per_second": 300.0,
        "device": "cpu",
    }
    assert timing([{"seconds": 5.0}], 900, torch.device("cpu"))["images_per_second"] == 180.0


# ---------------------------------------------------------------- the label diagnostics
def test_label_statistics_by_hand():
    """3 primary classes, 6 auxiliary classes (ψ = 2 per block: class 0 owns 0-1, 1 owns 2-3, 2 owns 4-5).
    Class 0 gets labels 0 0 1 2, class 1 gets 3 3; class 2 never appears (left out of the mean, not a NaN).

    in_block = (3 of class 0's + 2 of class 1's) / 6 = 5/6.
    entropy: class 0 p = (1/2, 1/4, 1/4) -> ½ ln 2 + ¼ ln 4 + ¼ ln 4 = 1.5 ln 2; class 1 p = (1) -> 0; mean 0.75 ln 2.
    NMI only over the batches that came with human labels: labels 2 3 3 vs human 3 2 2, a relabelling -> 1.
    """
    stats = LabelStats(num_classes=3, num_aux=6, device=torch.device("cpu"))
    stats.add(torch.tensor([0, 0, 0]), AuxTargets(target=torch.tensor([0, 0, 1]), weight=torch.ones(3)), None)
    chosen = AuxTargets(target=None, weight=torch.ones(3), chosen=torch.tensor([2, 3, 3]))
    stats.add(torch.tensor([0, 1, 1]), chosen, torch.tensor([3, 2, 2]))
    stats.add(torch.tensor([0]), AuxTargets(target=None, weight=torch.ones(1)), None)  # no labels: ignored
    assert stats.read() == {
        "labels/in_block": pytest.approx(5 / 6),
        "labels/entropy": pytest.approx(0.75 * math.log(2)),
        "labels/nmi": pytest.approx(1.0),
    }
    # class 2 now gets one label, 4 (its block): in_block 6/7; its entropy 0 counts: (1.5 ln 2 + 0 + 0)/3 = ½ ln 2
    stats.add(torch.tensor([2]), AuxTargets(target=torch.tensor([4]), weight=torch.ones(1)), None)
    assert stats.read() == {
        "labels/in_block": pytest.approx(6 / 7),
        "labels/entropy": pytest.approx(0.5 * math.log(2)),
        "labels/nmi": pytest.approx(1.0),
    }


def test_label_nmi_is_the_arithmetic_normalisation_and_a_soft_target_counts_its_argmax():
    """Class 1 gets a soft target whose argmax is label 3, human label 3, after labels 2 3 3 / human 3 2 2:
    labels L = 2 3 3 3, human H = 3 2 2 3. Joint: (2,3) 1/4, (3,2) 1/2, (3,3) 1/4; P(L) = 1/4, 3/4; P(H) = 1/2, 1/2.
    MI = ¼ ln((1/4)/(1/8)) + ½ ln((1/2)/(3/8)) + ¼ ln((1/4)/(3/8)) = ¼ ln 2 + ½ ln(4/3) + ¼ ln(2/3) = 0.215762;
    H(L) = ¼ ln 4 + ¾ ln(4/3) = 0.562335, H(H) = ln 2; NMI = MI / ((H(L) + H(H))/2) = 0.343712.
    in_block 4/4 = 1 (labels 2 and 3 are class 1's block); entropy: class 1 only, p = (1/4, 3/4) -> H(L)."""
    stats = LabelStats(num_classes=2, num_aux=4, device=torch.device("cpu"))
    stats.add(
        torch.tensor([1, 1, 1]),
        AuxTargets(target=None, weight=torch.ones(3), chosen=torch.tensor([2, 3, 3])),
        torch.tensor([3, 2, 2]),
    )
    soft = AuxTargets(target=torch.tensor([[0.1, 0.2, 0.3, 0.4]]), weight=torch.ones(1))
    stats.add(torch.tensor([1]), soft, torch.tensor([3]))
    mi = math.log(2) / 4 + math.log(4 / 3) / 2 + math.log(2 / 3) / 4
    h_l = math.log(4) / 4 + 3 / 4 * math.log(4 / 3)
    assert stats.read() == {
        "labels/in_block": pytest.approx(1.0),
        "labels/entropy": pytest.approx(h_l),
        "labels/nmi": pytest.approx(mi / ((h_l + math.log(2)) / 2)),
    }
    assert mi / ((h_l + math.log(2)) / 2) == pytest.approx(0.343712, abs=1e-6)


def test_label_nmi_is_zero_for_independent_labels_and_nothing_is_read_before_labels():
    """Labels 0 0 1 1 (class 0's block) against human labels 0 1 0 1: each label sees both human labels equally
    often, so the mutual information, and the NMI, is 0; in_block 1, entropy ln 2 (labels 0 and 1 half each)."""
    stats = LabelStats(num_classes=2, num_aux=4, device=torch.device("cpu"))
    assert stats.read() == {}
    stats.add(
        torch.zeros(4, dtype=torch.long),
        AuxTargets(target=torch.tensor([0, 0, 1, 1]), weight=torch.ones(4)),
        torch.tensor([0, 1, 0, 1]),
    )
    got = stats.read()
    assert got["labels/nmi"] == pytest.approx(0.0, abs=1e-12)
    assert (got["labels/in_block"], got["labels/entropy"]) == (pytest.approx(1.0), pytest.approx(math.log(2)))


# ---------------------------------------------------------------- intervals
def test_mean_ci_and_t_interval_on_three_seeds():
    """50, 52, 54: mean 52, s = 2, half-width t(0.975, 2) · 2/√3 = 4.302653 · 1.154701 = 4.968275.
    One seed: its value, no interval (t_interval collapses to the point); none: NaN and n = 0."""
    m, h, n = mean_ci([54.0, 50.0, 52.0])
    assert (m, n) == (52.0, 3) and h == pytest.approx(T975_DF2 * 2 / math.sqrt(3))
    assert t_interval([54.0, 50.0, 52.0]) == (pytest.approx(52 - 4.968275), pytest.approx(52 + 4.968275))
    assert t_interval([7.0]) == (7.0, 7.0)
    one, none = mean_ci([7.0]), mean_ci([])
    assert one[0] == 7.0 and math.isnan(one[1]) and one[2] == 1
    assert math.isnan(none[0]) and math.isnan(none[1]) and none[2] == 0


def test_a_paired_test_of_one_seed_or_none_is_nan_without_warnings():
    """One shared seed (5 - 3 = 2): n 1, its difference, no interval, no p, no sd, improved in 1 of 1; no shared
    seed: n 0 and NaN throughout. Neither asks numpy for a statistic of too few values (no RuntimeWarning)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = paired_test(pd.Series({0: 5.0, 1: 6.0}), pd.Series({0: 3.0}))
        none = paired_test(pd.Series({0: 5.0}), pd.Series({1: 3.0}))
    assert (one["n"], one["mean_difference"], one["prob_improvement"]) == (1, 2.0, 1.0)
    assert all(math.isnan(one[k]) for k in ("ci95_low", "p_value", "p_two_sided", "sd_difference"))
    assert none["n"] == 0 and all(math.isnan(v) for k, v in none.items() if k != "n")


def test_reproduction_verdict_is_inside_on_the_interval_edge():
    """Ours 50, 52, 54 (52 ± 4.968): the paper's 56.9 is inside, 57.0 outside, 47.1 inside; one seed has no
    interval; difference = ours - paper."""
    paper = pd.DataFrame(
        {
            "figure": [4] * 4,
            "experiment": ["a", "a", "a", "b"],
            "metric": ["test_acc_last15"] * 4,
            "value": [56.9, 57.0, 47.1, 10.0],
        }
    )
    runs = pd.DataFrame({"experiment": ["a", "a", "a", "b"], "seed": [0, 1, 2, 0], "test_acc_last15": [50, 52, 54, 9]})
    rep = reproduction(paper, runs)
    assert list(rep.verdict) == ["inside", "outside", "inside", "no interval (n < 2)"]
    assert list(rep.difference) == pytest.approx([52 - 56.9, 52 - 57.0, 52 - 47.1, 9 - 10.0])
    assert list(rep.n) == [3, 3, 3, 1] and rep.ci95_half_width[0] == pytest.approx(4.968275, abs=1e-6)


# ---------------------------------------------------------------- claims
def _arm(exp: str, values: dict[int, float], val: dict[int, float] | None = None, metric="test_acc_best_val"):
    """Rows of runs.csv for one experiment: seed -> metric (and seed -> val_acc_best)."""
    return [
        {"experiment": exp, "seed": s, metric: v, "val_acc_best": (val or {}).get(s, 50.0), "test_acc_last15": v}
        for s, v in values.items()
    ]


def _claim(table: pd.DataFrame, text: str, dataset: str = "cifar10") -> pd.Series:
    return table.set_index(["claim", "dataset"]).loc[(text, dataset)]


def _paper_says_rl_beats_single_by(gap: float) -> pd.DataFrame:
    """paper.csv rows where the paper's c10-rl - c10-single on test_acc_best_val is `gap` (80 + gap vs 80)."""
    return pd.DataFrame(
        {
            "figure": [7, 7],
            "experiment": ["c10-rl", "c10-single"],
            "metric": ["test_acc_best_val"] * 2,
            "value": [80.0 + gap, 80.0],
            "source": ["x", "x"],
        }
    )


def _rl_vs_single(rows: list[dict], paper: pd.DataFrame | None = None) -> pd.Series:
    return _claim(claims(pd.DataFrame(rows), "test_acc_best_val", paper=paper), "RL-AUX beats single-task learning")


def test_claim_pairs_by_seed_with_rows_shuffled_and_a_seed_missing_from_one_arm():
    """c10-rl has seeds 0-4, c10-single seeds 0-3 and 5: only seeds 0-3 pair. rl = 61, 62, 63, 62 and 90 (seed 4,
    unpaired); single = 60 each and 10 (seed 5, unpaired). Differences 1, 2, 3, 2: mean 2, s = √(2/3) = 0.8165,
    se = s/2 = 0.40825, t = 2√6 = 4.899 with 3 degrees of freedom; one-sided p = P(T3 > 4.899) = 0.00814 (closed
    form, t3_upper_tail); 95% interval 2 ± t(0.975, 3) · se = 2 ± 1.29924. Mean of the arms over the paired seeds
    only: 62 and 60 (not 67.6 and 50). Rows in any order give the same."""
    rows = _arm("c10-rl", {4: 90.0, 2: 63.0, 0: 61.0, 3: 62.0, 1: 62.0}) + _arm(
        "c10-single", {5: 10.0, 1: 60.0, 3: 60.0, 0: 60.0, 2: 60.0}
    )
    order = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4]  # a fixed shuffle of the 10 rows
    runs = pd.DataFrame([rows[i] for i in order])
    row = _claim(claims(runs, "test_acc_best_val"), "RL-AUX beats single-task learning")
    assert (row.n, row.mean_better, row.mean_worse, row.mean_difference) == (4, 62.0, 60.0, 2.0)
    se = math.sqrt(2 / 3) / 2
    assert row.p_value == pytest.approx(t3_upper_tail(2 * math.sqrt(6)), rel=1e-9)
    assert row.p_value == pytest.approx(0.008138, abs=1e-6)
    assert (row.ci95_low, row.ci95_high) == (pytest.approx(2 - T975_DF3 * se), pytest.approx(2 + T975_DF3 * se))
    # the only claim tested here: Holm over a family of 1 leaves the two-sided p = 2 x 0.008138 as it is
    assert row.p_two_sided == pytest.approx(2 * 0.008138, abs=2e-6) and row.p_holm == row.p_two_sided
    assert row.prob_improvement == 1.0 and row.verdict == "holds (Holm-adjusted p = 0.016 across 1 claim)"
    again = _claim(claims(pd.DataFrame(rows), "test_acc_best_val"), "RL-AUX beats single-task learning")
    pd.testing.assert_series_equal(again, row)


def test_the_metric_column_chooses_what_is_compared():
    """test_acc_last15 = the same values + 0 for rl and + 1 for single on every seed: the differences are 0, 1, 2, 1
    (mean 1), not 1, 2, 3, 2 (mean 2) as on test_acc_best_val."""
    runs = pd.DataFrame(
        _arm("c10-rl", {0: 61.0, 1: 62.0, 2: 63.0, 3: 62.0}) + _arm("c10-single", dict.fromkeys(range(4), 60.0))
    )
    runs.loc[runs.experiment == "c10-single", "test_acc_last15"] += 1.0
    last15 = _claim(claims(runs, "test_acc_last15"), "RL-AUX beats single-task learning")
    assert (last15.metric, last15.mean_difference, last15.mean_worse) == ("test_acc_last15", 1.0, 61.0)


def test_a_margin_claim_holds_when_every_difference_lies_inside_the_margin():
    """RL-AUX matches MAXL (margin 0.5): rl - maxl = -0.4, -0.2, -0.3, -0.1, all inside the margin. The test is on
    d + 0.5 = 0.1, 0.3, 0.2, 0.4: mean 0.25, s = √(0.05/3) = 0.12910, se = 0.06455, t = √15 = 3.873, p = P(T3 >
    3.873) = 0.01523 -> holds; every seed improves under the margin (prob_improvement 1, not 0). The interval
    of d itself, -0.25 ± 3.1824 · 0.06455 = [-0.4554, -0.0446], lies below 0, but not below -0.5: not reversed."""
    runs = pd.DataFrame(
        _arm("c10-rl", {0: 50.6, 1: 50.8, 2: 50.7, 3: 50.9}) + _arm("c10-maxl", dict.fromkeys(range(4), 51.0))
    )
    row = _claim(claims(runs, "test_acc_best_val"), "RL-AUX matches MAXL (RL >= MAXL - 0.5 pp)")
    se = math.sqrt(0.05 / 3) / 2
    assert row.mean_difference == pytest.approx(-0.25)
    assert row.p_value == pytest.approx(t3_upper_tail(math.sqrt(15)), rel=1e-6)
    assert row.p_value == pytest.approx(0.015233, abs=1e-5)
    assert row.ci95_high == pytest.approx(-0.25 + T975_DF3 * se) and row.ci95_high < 0
    # one claim tested: Holm-adjusted p = two-sided p = 2 x 0.015233 = 0.030466
    assert row.p_holm == pytest.approx(0.030466, abs=2e-5)
    assert row.prob_improvement == 1.0 and row.verdict == "holds (Holm-adjusted p = 0.03 across 1 claim)"
    # the same differences without the margin: p = P(T3 > -√15) = 1 - 0.01523, nobody improves
    plain = paired_test(
        runs[runs.experiment == "c10-rl"].set_index("seed").test_acc_best_val,
        runs[runs.experiment == "c10-maxl"].set_index("seed").test_acc_best_val,
    )
    assert plain["p_value"] == pytest.approx(1 - 0.015233, abs=1e-5) and plain["prob_improvement"] == 0.0


def test_margin_claims_count_improvements_strictly_and_reverse_beyond_the_margin():
    """rl - maxl = -0.6, -0.5, 0.1, -0.7: under the 0.5 margin d + 0.5 = -0.1, 0 (a tie, not an improvement), 0.6,
    -0.2 -> prob_improvement 1/4. rl - maxl = -1.0, -0.9, -1.1, -1.0 (mean -1, s = √(0.02/3), half-width
    3.1824 · 0.04082 = 0.1299): the interval's top -0.870 + 0.5 < 0 -> reversed, the gap of 1.00 pp named."""
    mixed = pd.DataFrame(
        _arm("c10-rl", {0: 50.4, 1: 50.5, 2: 51.1, 3: 50.3}) + _arm("c10-maxl", dict.fromkeys(range(4), 51.0))
    )
    text = "RL-AUX matches MAXL (RL >= MAXL - 0.5 pp)"
    assert _claim(claims(mixed, "test_acc_best_val"), text).prob_improvement == 0.25
    beyond = pd.DataFrame(
        _arm("c10-rl", {0: 50.0, 1: 50.1, 2: 49.9, 3: 50.0}) + _arm("c10-maxl", dict.fromkeys(range(4), 51.0))
    )
    row = _claim(claims(beyond, "test_acc_best_val"), text)
    assert row.ci95_high == pytest.approx(-1.0 + T975_DF3 * math.sqrt(0.02 / 3) / 2)
    # d + 0.5 = -0.5, -0.4, -0.6, -0.5: t = -0.5 / 0.040825 = -12.247, two-sided p = 2 P(T3 > 12.247) = 0.00117
    p_two = 2 * t3_upper_tail(0.5 / (math.sqrt(0.02 / 3) / 2))
    assert row.p_holm == pytest.approx(p_two, rel=1e-6) and row.p_holm == pytest.approx(0.00117, abs=1e-5)
    assert (
        row.verdict == f"reversed (gap 1.00 pp exceeds the 0.5 pp margin; Holm-adjusted p = {p_two:.2g} across 1 claim)"
    )
    assert row.prob_improvement == 0.0


def test_verdict_words_for_untestable_and_inconclusive_claims():
    """One paired seed: untestable (n = 1). Differences 1, 1, 1: no variance, untestable. Differences -1, -1, -1:
    no variance but below zero, reversed (rl is 1.00 pp below in every seed). Differences 3, -1, 1, -1 (mean 0.5,
    s = √(11/3) = 1.915, t = 0.5/0.957 = 0.5222, p = P(T3 > 0.5222) = 0.3188, two-sided 0.6376, alone in its
    family): inconclusive, right direction."""

    def table(diffs: list[float]) -> pd.Series:
        rows = _arm("c10-rl", {s: 60.0 + d for s, d in enumerate(diffs)}) + _arm(
            "c10-single", dict.fromkeys(range(len(diffs)), 60.0)
        )
        return _claim(claims(pd.DataFrame(rows), "test_acc_best_val"), "RL-AUX beats single-task learning")

    one = table([2.0])
    assert one.verdict == "inconclusive (untestable: n = 1 paired seeds)" and one.n == 1
    assert math.isnan(one.p_value) and math.isnan(one.mde_80) and math.isnan(one.p_holm)
    flat = table([1.0, 1.0, 1.0])
    assert flat.verdict == "inconclusive (untestable: every seed gives the same difference)"
    assert (flat.ci95_low, flat.ci95_high) == (1.0, 1.0) and flat.family_size == 0
    down = table([-1.0, -1.0, -1.0])
    assert down.verdict == "reversed (c10-rl is 1.00 pp below c10-single in every seed)"
    noisy = table([3.0, -1.0, 1.0, -1.0])
    p = t3_upper_tail(0.5 / (math.sqrt(11 / 3) / 2))
    assert noisy.p_value == pytest.approx(p, rel=1e-9) and noisy.p_value == pytest.approx(0.3188, abs=1e-4)
    assert noisy.p_holm == pytest.approx(2 * p, rel=1e-9)
    assert (
        noisy.verdict
        == f"inconclusive (right direction; Holm-adjusted p = 0.64 across 1 claim; MDE {noisy.mde_80:.1f} pp)"
    )


def test_constant_lambda_control_is_the_pools_best_on_validation_not_on_test():
    """CIFAR-100-20's control is the best of c100-human-lam* and c100-random-lam* by mean validation accuracy:
    human-lam2 (val mean 40, test 60), random-lam4 (val 45, 45, 45: mean 45, test 50), human-lam8 (val 60, 30, 30:
    mean 40 though its best seed is 60; test 70, the pool's best on test); c100-human (λ = 1, val 99) is outside
    the pool. Picked: random-lam4; WA-RL (test 55) vs it: differences +5 on each of 3 seeds."""
    rows = (
        _arm("c100-human-lam2", dict.fromkeys(range(3), 60.0), dict.fromkeys(range(3), 40.0))
        + _arm("c100-random-lam4", dict.fromkeys(range(3), 50.0), dict.fromkeys(range(3), 45.0))
        + _arm("c100-human-lam8", dict.fromkeys(range(3), 70.0), {0: 60.0, 1: 30.0, 2: 30.0})
        + _arm("c100-human", dict.fromkeys(range(3), 80.0), dict.fromkeys(range(3), 99.0))
        + _arm("c100-wa-rl", dict.fromkeys(range(3), 55.0))
    )
    row = _claim(
        claims(pd.DataFrame(rows), "test_acc_best_val"),
        "WA-RL's gain is more than a constant λ (WA-RL > constant-λ control)",
        "cifar100-20",
    )
    assert (row.better, row.worse, row.mean_worse, row.mean_difference, row.n) == (
        "c100-wa-rl",
        "c100-random-lam4",
        50.0,
        5.0,
        3,
    )
    none = _claim(
        claims(pd.DataFrame(rows[-6:]), "test_acc_best_val"),
        "WA-RL's gain is more than a constant λ (WA-RL > constant-λ control)",
        "cifar100-20",
    )
    assert none.verdict == "not run in this profile" and none.worse == "best:c100-human-lam,c100-random-lam"


def test_every_claim_compares_the_two_experiments_it_names():
    """Each claim's two arms get their own value (better = 70, worse = 60 on 2 seeds, +0/+1 by seed): each row
    reports exactly those two experiments and a difference of +10 (better and worse never swapped)."""
    for c in claim_list():
        if c.worse.startswith("best:"):
            continue
        rows = _arm(c.better, {0: 70.0, 1: 71.0}) + _arm(c.worse, {0: 60.0, 1: 61.0})
        row = _claim(claims(pd.DataFrame(rows), "test_acc_best_val"), c.text, c.dataset)
        assert (row.better, row.worse, row.mean_difference, row.n) == (c.better, c.worse, 10.0, 2), c


def test_paper_difference_prefers_a_figure_that_shows_both():
    """The paper shows rl = 90 and single = 80 in figure 7, single = 70 alone in figure 5, rl = 95 alone in figure
    9: the difference is figure 7's 10, not 95 - 70; rounded to 6 decimals."""
    paper = pd.DataFrame(
        {
            "figure": [5, 7, 7, 9, 7],
            "experiment": ["s", "r", "s", "r", "r"],
            "metric": ["m", "m", "m", "m", "other"],
            "value": [70.0, 90.0, 80.0, 95.0, 1.0],
        }
    )
    assert paper_difference(paper, "r", "s", "m") == 10.0
    assert paper_difference(paper[paper.figure != 7], "r", "s", "m") == 25.0  # only 9's rl and 5's single remain
    assert paper_difference(paper, "r", "s", "other") != paper_difference(paper, "r", "s", "other")  # NaN: no single
    assert (
        paper_difference(
            pd.DataFrame({"figure": [1, 1], "experiment": ["r", "s"], "metric": ["m"] * 2, "value": [0.3, 0.1]}),
            "r",
            "s",
            "m",
        )
        == 0.2
    )


# ---------------------------------------------------------------- last15's name, epochs, cost
def test_last15_name_and_run_epochs():
    """15 or more epochs everywhere: the paper's metric; some over 15, some under: last min(15, epochs); all 15 or
    less: the mean over all of them, named with their range."""
    assert last15_name([15, 20]) == "last 15 epochs (paper's metric)"
    assert last15_name([]) == "last 15 epochs (paper's metric)"
    assert last15_name([6, 40]) == "last min(15, epochs) epochs"
    assert last15_name([6, 15]) == "mean over all 6–15 epochs"
    assert last15_name([6, 6.0]) == "mean over all 6 epochs"
    runs = pd.DataFrame({"experiment": ["a", "b"], "epochs": [6, None]})
    assert list(run_epochs(runs)) == [6]
    curves = pd.DataFrame({"experiment": ["a", "a", "b"], "epoch": [1, 2, 1]})
    assert run_epochs(pd.DataFrame({"experiment": ["a"]}), curves).to_dict() == {"a": 2, "b": 1}
    assert run_epochs(pd.DataFrame({"experiment": ["a"]})).empty


def test_cost_is_the_median_over_seeds_and_the_ratio_to_the_same_datasets_single():
    """single: 2, 4, 100 s -> median 4; rl: 10, 30, 20 -> median 20, ratio 20/4 = 5 (mean would give 20/35.3)."""
    runs = pd.DataFrame(
        {
            "experiment": ["s"] * 3 + ["r"] * 3,
            "dataset": ["cifar10"] * 6,
            "method": ["single"] * 3 + ["rl"] * 3,
            "seconds_per_epoch": [2.0, 4.0, 100.0, 10.0, 30.0, 20.0],
        }
    )
    assert list(cost(runs).experiment) == ["s", "r"]  # the runs' order (params.yaml's), not sorted
    table = cost(runs).set_index("experiment")
    assert table.seconds_per_epoch.to_dict() == {"s": 4.0, "r": 20.0}
    assert table.ratio_to_single.to_dict() == {"s": 1.0, "r": 5.0} and table.n.to_dict() == {"s": 3, "r": 3}
    assert list(cost(runs.iloc[:0]).columns) == [
        "experiment",
        "dataset",
        "method",
        "seconds_per_epoch",
        "n",
        "ratio_to_single",
    ]


def test_cost_ratio_only_at_one_known_thread_count():
    """s at 2 threads; r at 2 (ratio 5), m at 1 (no ratio: another thread count), w at 1 and 2 ("1/2", no ratio),
    o with a run that recorded none ("not recorded", no ratio)."""
    runs = pd.DataFrame(
        {
            "experiment": ["s", "r", "m", "w", "w", "o"],
            "dataset": ["cifar10"] * 6,
            "method": ["single", "rl", "maxl", "wa-rl", "wa-rl", "rl"],
            "seconds_per_epoch": [4.0, 20.0, 30.0, 40.0, 40.0, 8.0],
            "threads": [2, 2, 1, 1, 2, math.nan],
        }
    )
    table = cost(runs).set_index("experiment")
    assert table.threads.to_dict() == {"s": "2", "r": "2", "m": "1", "w": "1/2", "o": "not recorded"}
    assert table.ratio_to_single.dropna().to_dict() == {"s": 1.0, "r": 5.0}
    assert list(cost(runs).columns) == [
        "experiment",
        "dataset",
        "method",
        "seconds_per_epoch",
        "threads",
        "n",
        "ratio_to_single",
    ]


def test_cost_ratio_is_against_each_datasets_single_and_never_between_mixed_or_unrecorded_counts():
    """Per dataset, the base is its single-task experiment's thread count, not another method's:
    a: single S at 1 thread (ratio 1), R and M at 2 (another count than S's, no ratio; had R's 2 been the base,
       R and M would get ratios);
    b: single and rl both ran at 1 and 2 threads ("1/2" = "1/2", yet mixed counts are no cost: no ratio);
    c: single and rl both "not recorded" (equal, yet unknown: no ratio)."""
    runs = pd.DataFrame(
        {
            "experiment": ["S", "R", "M", "bs", "bs", "br", "br", "cs", "cr"],
            "dataset": ["a"] * 3 + ["b"] * 4 + ["c"] * 2,
            "method": ["single", "rl", "maxl", "single", "single", "rl", "rl", "single", "rl"],
            "seconds_per_epoch": [4.0, 20.0, 30.0, 4.0, 4.0, 8.0, 8.0, 4.0, 8.0],
            "threads": [1, 2, 2, 1, 2, 1, 2, math.nan, math.nan],
        }
    )
    table = cost(runs).set_index("experiment")
    assert table.threads.to_dict() == {
        "S": "1",
        "R": "2",
        "M": "2",
        "bs": "1/2",
        "br": "1/2",
        "cs": "not recorded",
        "cr": "not recorded",
    }
    assert table.ratio_to_single.dropna().to_dict() == {"S": 1.0}


# ---------------------------------------------------------------- what DVC reads: runs.csv and metrics/*.json
def test_metrics_json_for_dvc_value_by_value_from_runs_csv(tmp_path, monkeypatch):
    """Three seeds of c10-single whose metrics.json say test_acc_best_val 50, 52, 54 (mean 52, half-width
    t(0.975, 2) · 2/√3 = 4.968 -> 4.97), test_acc_last15 40.111, 40.222, 40.333 (-> 40.22), f1 0.5, 0.6, 0.7123
    (-> 0.6041); one seed of c10-rl (no interval: null). runs.csv carries each run's metrics.json values
    unchanged; metrics/<experiment>.json holds those summaries, and a stale file from a dropped experiment goes."""
    params = {
        "profile": "tiny",
        "seed_pool": [0, 1, 2],
        "profiles": {
            "tiny": {"seeds": 3, "settings": {"epochs": 2}, "datasets": {"cifar10": {}}, "only": ["c10-single"]},
        },
        "experiments": {
            "c10-single": {"dataset": "cifar10", "method": "single"},
            "c10-rl": {"dataset": "cifar10", "method": "rl"},
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    written = {}
    for seed, (best, last15, f1) in enumerate([(50.0, 40.111, 0.5), (52.0, 40.222, 0.6), (54.0, 40.333, 0.7123)]):
        metrics = {
            "test_acc_last15": last15,
            "test_acc_best_val": best,
            "test_acc_final": best - 1,
            "val_acc_best": best + 1,
            "precision": f1 + 0.01,
            "recall": f1 + 0.02,
            "f1": f1,
            "epochs": 2,
        }
        run = tmp_path / "runs" / "tiny" / "c10-single" / f"s{seed}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(metrics))
        pd.DataFrame({"epoch": [1, 2], "val_acc": [1.0, 2.0], "test_acc": [3.0, 4.0]}).to_csv(
            run / "history.csv", index=False
        )
        written[seed] = metrics
    out = tmp_path / "results"
    (out / "metrics").mkdir(parents=True)
    (out / "metrics" / "c10-gone.json").write_text("{}")
    collect(load_params(tmp_path / "params.yaml"), out)
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.seed) == [0, 1, 2] and (runs.experiment == "c10-single").all()
    for seed, metrics in written.items():
        row = runs[runs.seed == seed].iloc[0]
        assert {k: row[k] for k in METRICS} == pytest.approx({k: metrics[k] for k in METRICS}, rel=1e-12)
        assert row.epochs == 2
    assert sorted(p.name for p in (out / "metrics").iterdir()) == ["c10-single.json"]
    assert json.loads((out / "metrics" / "c10-single.json").read_text()) == {
        "test_acc": 52.0,
        "ci95": 4.97,
        "last15": 40.22,
        "f1": 0.6041,
        "seeds": 3,
    }
    one = runs.iloc[:1].assign(experiment="c10-rl")
    write_metrics(one, out / "metrics")
    assert json.loads((out / "metrics" / "c10-rl.json").read_text()) == {
        "test_acc": 50.0,
        "ci95": None,
        "last15": 40.11,
        "f1": 0.5,
        "seeds": 1,
    }


# ---------------------------------------------------------------- paper_tables/<profile>/: what the tables file says
def test_write_tables_files_hold_the_numbers_in_four_significant_digits(tmp_path):
    """c10-rl: 50, 52, 54 on test_acc_last15 over 6 epochs (52 ± 4.968), the paper's 56.9: inside, difference
    52 - 56.9 = -4.9; c10-single on 2 seeds. The markdown row reads `| 7 | c10-rl | test_acc_last15 | 56.9 | 52 |
    4.968 | 3 | -4.9 | inside | Fig |`; a NaN prints as an empty cell, never `nan`; the intro counts the most seeds of
    any experiment (3) and names test_acc_last15 for what it is at 6 epochs. The paper's single-task 50.0 in the same
    figure gives the claim RL-AUX > single its paper difference 56.9 - 50.0 = 6.9. No runs: 0 seeds."""
    from rlaux.report.tables import write_tables

    paper = pd.DataFrame(
        {
            "figure": [7, 7],
            "experiment": ["c10-rl", "c10-single"],
            "metric": ["test_acc_last15"] * 2,
            "value": [56.9, 50.0],
            "source": ["Fig"] * 2,
        }
    )
    rows = _arm("c10-rl", {0: 50.0, 1: 52.0, 2: 54.0}) + _arm("c10-single", {0: 49.0, 1: 50.0})
    runs = pd.DataFrame(rows).assign(epochs=6)
    _, cl = write_tables(paper, runs, "study", tmp_path)
    assert len(cl) == 2 * len(claim_list()) and set(cl.metric) == {"test_acc_last15", "test_acc_best_val"}
    written = pd.read_csv(tmp_path / "reproduction.csv")
    assert list(written.columns) == [
        "figure",
        "experiment",
        "metric",
        "paper",
        "ours_mean",
        "ci95_half_width",
        "n",
        "difference",
        "verdict",
        "source",
    ]
    assert written.loc[0, ["verdict", "ours_mean", "n"]].tolist() == ["inside", 52.0, 3]
    claims_csv = pd.read_csv(tmp_path / "claims.csv")
    assert list(claims_csv.columns) == list(cl.columns) and len(claims_csv) == len(cl)
    assert set(claims_csv.profile) == {"study"}
    rl = claims_csv[(claims_csv.claim == "RL-AUX beats single-task learning") & (claims_csv.dataset == "cifar10")]
    difference = rl.set_index("metric").paper_difference  # the paper gives only the last-15 metric
    assert difference["test_acc_last15"] == pytest.approx(6.9) and math.isnan(difference["test_acc_best_val"])
    md = (tmp_path / "reproduction.md").read_text()
    assert md.startswith("# RL-AUX reproduction: profile `study`\n\nOurs: mean over 3 seeds with a two-sided 95%")
    for sentence in (
        "test_acc_last15, here the mean over all 6 epochs, early epochs included (the paper's metric averages the "
        "last 15 of 80-200 epochs), in percent; precision, recall and F1 are macro averages at the best-validation "
        "epoch. Verdict: whether the paper's number lies inside our interval. Our runs train on 90% of the training "
        "split (the rest is the validation split the paper lacked), a small bias against us.\n\n",
        "\n## Paper numbers\n\n| figure |",
        "|\n\n## Claims\n\nEvery claim on both metrics (the `metric` column), as claims.csv holds them; how each is "
        "tested and what its columns and verdicts mean: README.md, section Claims.\n\n| claim |",
    ):
        assert sentence in md, sentence
    assert (
        "**The `study` profile** trains reduced networks on reduced data for few epochs: its numbers test the "
        "paper's claims at this scale" in md
    )
    head = (
        "| figure | experiment | metric | paper | ours_mean | ci95_half_width | n | difference | verdict | source |\n|"
    )
    assert (
        head + "---|" * 10 + "\n| 7 | c10-rl | test_acc_last15 | 56.9 | 52 | 4.968 | 3 | -4.9 | inside | Fig |\n" in md
    )
    # rl - single = 1, 2 on the 2 paired seeds: t = 1.5 / 0.5 = 3 on 1 df, p = 1/2 - atan(3)/π = 0.102: no claim holds
    assert "nan" not in md.lower() and "| holds (" not in md
    write_tables(paper, runs.assign(epochs=20), "paper", tmp_path)
    md = (tmp_path / "reproduction.md").read_text()
    assert "Accuracies are the paper's metric, mean test accuracy over the last min(15, epochs) epochs" in md
    assert "profile** trains reduced networks" not in md
    write_tables(paper, runs.iloc[:0], "study", tmp_path)
    assert "Ours: mean over 0 seeds" in (tmp_path / "reproduction.md").read_text()


def test_scale_note_only_outside_the_paper_profile_and_a_paper_row_without_source():
    """The note names the profile and where the paper's scale runs; none for `paper`. A paper table without a source
    column leaves the source empty."""
    from rlaux.report.tables import scale_note

    assert scale_note("paper") == ""
    assert scale_note("study").startswith("**The `study` profile** trains reduced networks")
    assert scale_note("study").endswith("(the `paper` profile runs the paper's scale on GPUs).\n\n")
    paper = pd.DataFrame({"figure": [7], "experiment": ["c10-rl"], "metric": ["test_acc_last15"], "value": [56.9]})
    assert reproduction(paper, pd.DataFrame()).source.tolist() == [""]


def test_verdict_words_at_their_edges():
    """Each verdict sentence by hand: two flat seeds (n = 2, no spread); a margin claim whose flat differences
    (-0.3) lie inside its 0.5 pp margin (not reversed); a reversal named by its gap; a mean of exactly 0 (not
    the claim's direction); the paper's difference in an inconclusive verdict."""

    def table(diffs: list[float], worse: str = "c10-single", text: str = "RL-AUX beats single-task learning"):
        rows = _arm("c10-rl", {s: 60.0 + d for s, d in enumerate(diffs)}) + _arm(
            worse, dict.fromkeys(range(len(diffs)), 60.0)
        )
        return _claim(claims(pd.DataFrame(rows), "test_acc_best_val"), text)

    assert table([1.0, 1.0]).verdict == "inconclusive (untestable: every seed gives the same difference)"
    assert table([-1.0, -1.0]).verdict == "reversed (c10-rl is 1.00 pp below c10-single in every seed)"
    match = "RL-AUX matches MAXL (RL >= MAXL - 0.5 pp)"
    assert table([-0.3, -0.3, -0.3], "c10-maxl", match).verdict.startswith("inconclusive (untestable: every seed")
    # 1, 2, 3, 2 below: t = 4.899 on 3 df, two-sided p = 2 x 0.008138 = 0.016 (alone in its family)
    down = table([-1.0, -2.0, -3.0, -2.0])
    assert down.verdict == "reversed (c10-rl is 2.00 pp below c10-single; Holm-adjusted p = 0.016 across 1 claim)"
    tied = table([1.0, -1.0, 0.5, -0.5])  # mean exactly 0: no evidence for the claim's direction
    assert tied.verdict.startswith("inconclusive (wrong direction; Holm-adjusted p = 1 across 1 claim")
    # 3, -1, 1, -1 below: inconclusive; whether the paper's +5 pp is in our interval 0.5 ± 3.18 x 0.957 (no)
    rows = _arm("c10-rl", {s: 60.0 + d for s, d in enumerate([3.0, -1.0, 1.0, -1.0])}) + _arm(
        "c10-single", dict.fromkeys(range(4), 60.0)
    )
    paper = _paper_says_rl_beats_single_by(5.0)
    noisy = _rl_vs_single(rows, paper)
    assert noisy.verdict.endswith("; the paper's +5.0 pp is excluded here)")
    paper = _paper_says_rl_beats_single_by(1.0)
    noisy = _rl_vs_single(rows, paper)
    assert noisy.verdict.endswith("; the paper's +1.0 pp lies inside our interval)")


def test_a_reversal_before_adjustment_says_so():
    """Two claims: RL-AUX vs single (diffs -1, -0.3, -0.1, -1.2, -0.6: mean -0.64, squared deviations sum to
    0.852, s = √0.213 = 0.4615, se = 0.2064, t = -3.101 on 4 df, two-sided p = 0.0362) and RL-AUX vs MAXL (the
    same differences: MAXL = single), so Holm gives both 2 x 0.0362 = 0.072: not reversed after adjustment,
    though the interval lies below 0."""
    diffs = [-1.0, -0.3, -0.1, -1.2, -0.6]
    rows = (
        _arm("c10-rl", {s: 60.0 + d for s, d in enumerate(diffs)})
        + _arm("c10-single", dict.fromkeys(range(5), 60.0))
        + _arm("c10-maxl", dict.fromkeys(range(5), 60.0))
    )
    row = _claim(claims(pd.DataFrame(rows), "test_acc_best_val"), "RL-AUX beats single-task learning")
    assert row.ci95_high < 0 and row.p_holm == pytest.approx(2 * row.p_two_sided) and row.family_size == 2
    assert row.p_two_sided == pytest.approx(0.0362, abs=5e-4)
    assert "; reversed before adjustment (the whole 95% interval is below 0), not after" in row.verdict


def test_the_constant_lambda_control_is_the_pools_best_on_validation_by_its_prefixes():
    """`best:c100-human-lam,c100-random-lam`: of c100-human-lam2 (validation 60), c100-random-lam8 (55) and
    c100-rl-lam4 (70, outside the pool), the pick is c100-human-lam2; with it gone, c100-random-lam8."""
    runs = pd.DataFrame(
        _arm("c100-human-lam2", {0: 30.0}, {0: 60.0})
        + _arm("c100-random-lam8", {0: 20.0}, {0: 55.0})
        + _arm("c100-rl-lam4", {0: 50.0}, {0: 70.0})
    )
    assert pick("best:c100-human-lam,c100-random-lam", runs) == "c100-human-lam2"
    assert pick("best:c100-human-lam,c100-random-lam", runs.iloc[1:]) == "c100-random-lam8"
    assert pick("c100-rl-lam4", runs) == "c100-rl-lam4" and pick("c100-rl-lam8", runs) is None


def test_claim_rows_name_their_profile_and_the_papers_difference_only_where_both_exist():
    """Two paired seeds (differences 1 and 2: interval 1.5 ± 6.353) against a paper difference of +5: inside.
    Without the paper's pair there is nothing to exclude (NaN, not True). A family of one claim: the MDE is the
    two-sided test's at α = 0.05 itself."""
    rows = _arm("c10-rl", {0: 61.0, 1: 62.0}) + _arm("c10-single", {0: 60.0, 1: 60.0})
    paper = _paper_says_rl_beats_single_by(5.0)
    row = _rl_vs_single(rows, paper)
    assert row.n == 2 and row.paper_difference == 5.0 and row.paper_difference_excluded is False
    assert row.family_size == 1 and row.mde_80 == pytest.approx(mde(2, math.sqrt(0.5), alpha=0.05))
    # on the interval's edge: two seeds each +1 (interval [1, 1]) against the paper's +1 exactly: inside
    flat = _arm("c10-rl", {0: 61.0, 1: 61.0}) + _arm("c10-single", {0: 60.0, 1: 60.0})
    paper = _paper_says_rl_beats_single_by(1.0)
    edge = _rl_vs_single(flat, paper)
    assert (edge.ci95_low, edge.ci95_high, edge.paper_difference) == (1.0, 1.0, 1.0)
    assert edge.paper_difference_excluded is False
    alone = claims(pd.DataFrame(rows), "test_acc_best_val")
    row = _claim(alone, "RL-AUX beats single-task learning")
    assert math.isnan(row.paper_difference) and math.isnan(row.paper_difference_excluded)
    assert (alone.profile == "").all()
    assert (all_claims(pd.DataFrame(rows)).profile == "").all()  # the default names no profile


def test_last15_name_between_and_beyond_fifteen_epochs():
    assert last15_name([2, 16]) == "last min(15, epochs) epochs"
    assert last15_name([2, 3, 4]) == "mean over all 2–4 epochs"


def test_reproduction_counts_the_interval_edge_as_inside_and_cost_needs_its_column():
    """Two seeds at exactly 52.0: half-width 0, and the paper's 52.0 lies on the interval (inside, not outside).
    Runs without seconds_per_epoch (an older runs.csv) give an empty cost table, not a KeyError."""
    paper = pd.DataFrame({"figure": [4], "experiment": ["a"], "metric": ["test_acc_last15"], "value": [52.0]})
    runs = pd.DataFrame({"experiment": ["a", "a"], "seed": [0, 1], "test_acc_last15": [52.0, 52.0]})
    rep = reproduction(paper, runs)
    assert rep.ci95_half_width[0] == 0.0 and rep.verdict[0] == "inside"
    old = pd.DataFrame({"experiment": ["a"], "dataset": ["cifar10"], "method": ["single"]})
    assert cost(old).empty and "ratio_to_single" in cost(old).columns


# ---------------------------------------------------------------- have the networks settled?
def test_settling_slope_is_over_each_runs_last_15_epochs():
    """17 epochs; epochs 1-2 are 100% (outside the window: a slope over all epochs would be negative).
    a: seed 0 test_acc = epoch (slope 1), seed 1 = 2·epoch (slope 2): mean 1.5, s = 0.7071, half-width
       t(0.975, 1) · s/√2 = 12.706 · 0.5 = 6.353: the interval holds 0, "no trend detected".
    b: three seeds at slope 1 (no spread): "still rising". c: flat at 40 in both seeds: "no trend detected".
    d: one seed: "untestable". f (listed first, and kept first): slope -1 in both seeds: "falling"."""
    from rlaux.report.tables import settling

    rows = []
    for exp, seeds in (
        ("f", {0: -1.0, 1: -1.0}),
        ("a", {0: 1.0, 1: 2.0}),
        ("b", {0: 1.0, 1: 1.0, 2: 1.0}),
        ("c", {0: 0.0, 1: 0.0}),
        ("d", {0: 1.0}),
    ):
        for seed, slope in seeds.items():
            for epoch in range(1, 18):
                acc = 100.0 if epoch <= 2 else 40.0 + slope * epoch
                rows.append({"experiment": exp, "seed": seed, "epoch": epoch, "test_acc": acc})
    table = settling(pd.DataFrame(rows)).set_index("experiment")
    assert list(table.index) == ["f", "a", "b", "c", "d"]
    assert table.loc["a", "epochs"] == "3–17" and table.loc["a", "n"] == 2
    assert table.loc["a", "slope_pp_per_epoch"] == pytest.approx(1.5)
    assert table.loc["a", "ci95_high"] == pytest.approx(1.5 + 12.706205 * 0.5, abs=1e-5)
    assert table.loc["a", "ci95_low"] == pytest.approx(1.5 - 12.706205 * 0.5, abs=1e-5)
    assert table.trend.to_dict() == {
        "f": "falling",
        "a": "no trend detected",
        "b": "still rising",
        "c": "no trend detected",
        "d": "untestable",
    }
    from rlaux.report.readme import settling_section

    text = settling_section(pd.DataFrame(rows))
    assert "1 of 5 experiments were still rising in that window." in text and "| b | 3–17 | 1 |" in text


# ---------------------------------------------------------------- the reward probe's variance components
def test_two_way_components_by_method_of_moments_by_hand():
    """Rewards (4 label sets x 3 evaluation batches) = row effect + column effect + residual:
        rows r = (-3, -1, 1, 3), columns c = (-2, 0, 2), residual e with every row and column mean 0:
        e = [[1, -1, 0], [-1, 1, 0], [1, -1, 0], [-1, 1, 0]].
    Row means = r (sd √(20/3)), column means = c (sd 2). SS: rows 3·20 = 60, columns 4·8 = 32, residual 8, total
    100, so the rows' SS share is 0.6. Mean squares: rows 60/3 = 20, columns 32/2 = 16, residual 8/6 = 4/3.
    Components: label (20 - 4/3)/3 = 56/9, batch (16 - 4/3)/4 = 11/3, residual 4/3; label share of their sum
    56/9 / (56/9 + 33/9 + 12/9) = 56/101 = 0.554 (below the SS share 0.6: the residual is not credited)."""
    from rlaux.report.stats import two_way_components

    label, batch, residual = two_way_components([math.sqrt(20 / 3)], [2.0], [0.6], rows=4, cols=3)
    assert label == pytest.approx(56 / 9) and batch == pytest.approx(11 / 3) and residual == pytest.approx(4 / 3)
    assert label / (label + batch + residual) == pytest.approx(56 / 101)
    # noise alone: a row mean square below the residual's gives a zero component, never a negative one
    label, _, _ = two_way_components([0.1], [2.0], [0.001], rows=4, cols=3)
    assert label == 0.0
    from rlaux.report.collect import _label_component

    # collect's per-run number: mean squares pooled over epochs, then the share (epoch 2 repeats epoch 1 at twice
    # the scale: mean squares x 4, so the share is again 56/101); an epoch without the probe is left out
    history = pd.DataFrame(
        {
            "agent/reward_label_sd": [math.sqrt(20 / 3), 2 * math.sqrt(20 / 3), math.nan],
            "agent/reward_batch_sd": [2.0, 4.0, math.nan],
            "agent/reward_label_share": [0.6, 0.6, math.nan],
        }
    )
    assert _label_component(history) == pytest.approx(56 / 101)
    assert math.isnan(_label_component(pd.DataFrame({"epoch": [1]})))


def test_two_way_components_pool_the_epochs_before_clipping_at_zero():
    """4 x 3 layouts in three epochs, rows' SS 60 each (row sd √(20/3), mean square 20), columns' SS 4·2·0.5² = 2
    (column sd 0.5, mean square 1); the rows' share sets each total SS and so the residual SS = total - 60 - 2:
    shares 60/63, 1 and 1/2 give residual SS 1, -2 and 58, mean squares 1/6, -1/3 and 29/3. Pooled: the residual
    mean square (1/6 - 1/3 + 29/3)/3 = 19/6 (the negative epoch is not clipped first), label (20 - 19/6)/3 = 101/18,
    batch (1 - 19/6)/4 < 0, clipped to 0 once. (Clipping each epoch first gave label 301/54, batch 11/72: biased.)
    One epoch alone with a negative residual SS: its mean square is clipped to 0 before the effects subtract it.
    A share of 0 (an epoch without the probe) divides by zero without a warning."""
    import warnings

    from rlaux.report.stats import two_way_components

    sd = math.sqrt(20 / 3)
    label, batch, residual = two_way_components([sd, sd, sd], [0.5] * 3, [60 / 63, 1.0, 0.5], rows=4, cols=3)
    assert residual == pytest.approx(19 / 6) and label == pytest.approx(101 / 18) and batch == 0.0
    label, batch, residual = two_way_components([sd], [0.5], [1.0], rows=4, cols=3)  # a negative residual alone
    assert residual == 0.0 and label == pytest.approx(20 / 3) and batch == pytest.approx(1 / 4)  # clipped, then used
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        label, batch, residual = two_way_components([sd], [0.5], [0.0], rows=4, cols=3)
    assert residual == math.inf and label == 0.0 and batch == 0.0


def test_linear_trend_by_hand():
    """x = 0..3, y = (0, 1, 1, 3): x̄ = 1.5, ȳ = 1.25, Sxx = 5, Sxy = 4.5, so slope 0.9 and intercept 1.25 - 1.35 =
    -0.1; residuals (0.1, 0.2, -0.7, 0.4), SSE 0.7, s² = 0.7/2, stderr √(0.35/5) = √0.07; half-width
    t(0.975, 2)·√0.07. Fewer than 3 points: every number NaN, n kept."""
    from rlaux.report.stats import linear_trend

    fit = linear_trend([0, 1, 2, 3], [0, 1, 1, 3])
    h = T975_DF2 * math.sqrt(0.07)
    assert fit == pytest.approx({"slope": 0.9, "slope_low": 0.9 - h, "slope_high": 0.9 + h, "intercept": -0.1, "n": 4})
    short = linear_trend([1, 2], [3, 4])
    assert list(short) == ["slope", "slope_low", "slope_high", "intercept", "n"] and short["n"] == 2
    assert all(math.isnan(v) for k, v in short.items() if k != "n")


# ---------------------------------------------------------------- history.csv, as `rlaux evaluate` reads it
HEADER = "epoch,val_acc,test_acc,test_precision,test_recall,test_f1,rl/reward_mean"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEADER + "\n",
            "lacks the columns epoch, val_acc, test_acc, test_precision, test_recall, test_f1 (or has no rows)",
        ),
        (HEADER.replace("val_acc", "val_ac") + "\n1,2,3,4,5,6,\n", "lacks the columns val_acc (or has no rows)"),
        (
            HEADER + "\n1,,3,4,5,6,7\n",
            "has empty cells in epoch, val_acc, test_acc, test_precision, test_recall, test_f1",
        ),
        (HEADER + "\n1,2,3,4,5,6,7,8\n", "cannot be read (TypeError: "),
        (HEADER + "\n1,2,3,4,5,6,x\n", "cannot be read (ValueError: could not convert string to float: 'x')"),
    ],
    ids=["header-only", "dropped-column", "empty-cell", "extra-field", "not-a-number"],
)
def test_a_damaged_history_is_refused_with_what_is_wrong(tmp_path, text, message):
    """Each damage its own words, the file named first and the fix last (`rlaux evaluate` prints them as one line)."""
    from rlaux.errors import CheckpointError
    from rlaux.evaluation import _read_history

    path = tmp_path / "history.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CheckpointError) as err:
        _read_history(path, "FIX")
    assert str(err.value).startswith(f"{path} ") and str(err.value).endswith("; FIX") and message in str(err.value)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CheckpointError, match="cannot be read \\(UnicodeDecodeError: "):
        _read_history(path, "FIX")


def test_a_history_reads_as_floats_with_optional_cells_empty(tmp_path):
    """Two epochs; the RL column is empty in the first (a method logs it from epoch 2): None there, floats elsewhere."""
    from rlaux.evaluation import _read_history

    path = tmp_path / "history.csv"
    path.write_text(HEADER + "\n1,10.5,9,0.1,0.2,0.3,\n2,11,9.5,0.2,0.3,0.4,-1.25\n", encoding="utf-8")
    rows = _read_history(path, "FIX")
    assert rows == [
        {
            "epoch": 1.0,
            "val_acc": 10.5,
            "test_acc": 9.0,
            "test_precision": 0.1,
            "test_recall": 0.2,
            "test_f1": 0.3,
            "rl/reward_mean": None,
        },
        {
            "epoch": 2.0,
            "val_acc": 11.0,
            "test_acc": 9.5,
            "test_precision": 0.2,
            "test_recall": 0.3,
            "test_f1": 0.4,
            "rl/reward_mean": -1.25,
        },
    ]


def test_claims_edges_the_mutation_tester_found():
    """A paper difference exactly on the interval (two seeds, both rl - single = 2, so the interval is [2, 2]) lies
    inside it; a claim whose arms did not run keeps the ids it names; no runs at all is every claim not run; the
    two metrics' claims stack under one fresh index."""
    runs = pd.DataFrame(_arm("c10-rl", {0: 52.0, 1: 53.0}) + _arm("c10-single", {0: 50.0, 1: 51.0}))
    table = claims(runs, "test_acc_best_val", "study", _paper_says_rl_beats_single_by(2.0))
    row = _claim(table, "RL-AUX beats single-task learning")
    assert row.ci95_low == row.ci95_high == 2.0 and row.paper_difference == 2.0
    assert bool(row.paper_difference_excluded) is False  # NaN (untested) would be truthy
    missing = _claim(table, "MAXL beats single-task learning")
    assert (missing.better, missing.worse, missing.verdict) == ("c10-maxl", "c10-single", "not run in this profile")
    empty = claims(pd.DataFrame(), "test_acc_best_val")
    assert len(empty) == len(claim_list()) and set(empty.verdict) == {"not run in this profile"}
    both = all_claims(runs, "study")
    assert list(both.index) == list(range(2 * len(claim_list())))


def test_reevaluate_refuses_what_is_not_a_finished_run_in_its_own_words(tmp_path):
    """Before any data is read: a missing directory, a missing file, a config that is not JSON, not a mapping, or
    not this version's; each names the file and says how to fix it."""
    from rlaux.errors import CheckpointError
    from rlaux.evaluation import reevaluate

    run = tmp_path / "run"
    fix = f"re-run training into {run} (or pass the right run directory)"
    cases = [
        (None, f"run directory {run} does not exist; pass the --out of a finished `rlaux train`"),
        ({}, f"{run / 'config.json'} is missing, so {run} is not a finished run; {fix}"),
        ({"config.json": "{not json"}, f"{run / 'config.json'} is not valid JSON ("),
        ({"config.json": "[]"}, f"{run / 'config.json'} must hold a config mapping; {fix}"),
        ({"config.json": '{"lerning_rate": 1}'}, f"{run / 'config.json'} (written by another rlaux version?): "),
    ]
    for files, message in cases:
        if files is not None:
            run.mkdir(exist_ok=True)
            for name in ("config.json", "history.csv", "best.pt"):
                (run / name).unlink(missing_ok=True)
            if files:
                (run / "history.csv").write_text(HEADER + "\n")
                (run / "best.pt").write_bytes(b"")
            for name, text in files.items():
                (run / name).write_text(text)
        with pytest.raises(CheckpointError) as err:
            reevaluate(run)
        assert str(err.value).startswith(message), (message, str(err.value))
        assert files is None or str(err.value).endswith(fix)
