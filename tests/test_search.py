"""The pre-registered search's rule on synthetic cells, with p-values worked out by hand (issue 27).

Student's t with 2 degrees of freedom has P(T > t) = 1/2 - t / (2 √(2 + t²)).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rlaux.errors import ConfigError
from rlaux.experiments import Params, load_params
from rlaux.report.search import search_table, write_search

ARMS = {
    "c100-human": {"dataset": "cifar100-20", "method": "human"},
    "c100-single": {"dataset": "cifar100-20", "method": "single"},
    "c100-single-scale2": {"dataset": "cifar100-20", "method": "single", "primary_loss_scale": 2},
}


def t2_upper_tail(t: float) -> float:
    return 0.5 - t / (2 * math.sqrt(2 + t * t))


def _raw(confirmation: str | None = "confirm") -> dict:
    cell = {"seeds": 3, "seed_pool": [7, 8, 9], "datasets": {"cifar100-20": {}}, "only": list(ARMS)}
    return {
        "profile": "cheap",
        "seed_pool": [0, 1, 2],
        "profiles": {
            "cheap": cell,
            "middle": cell,
            "costly": cell,
            "confirm": cell | {"seed_pool": [20, 21, 22]},
        },
        "experiments": ARMS,
        "searches": {
            "pc": {
                "cells": ["cheap", "middle", "costly"],
                "task": "c100-human",
                "baseline": "c100-single",
                "step_control": "c100-single-scale2",
                "confirmation": confirmation,
            }
        },
    }


def _write(profile: str, seeds: list[int], accs: dict[str, list[float]]) -> None:
    for arm, values in accs.items():
        for seed, acc in zip(seeds, values, strict=True):
            run = Path("runs", profile, arm, f"s{seed}")
            run.mkdir(parents=True)
            (run / "metrics.json").write_text(json.dumps({"test_acc_best_val": acc, "epochs": 4}))
            (run / "timing.json").write_text(json.dumps({"seconds_per_epoch": 15.0}))


def test_the_rule_picks_the_cheapest_cell_that_holds_and_holm_judges_the_confirmation(tmp_path, monkeypatch):
    """cheap: human - single = 1, 2, 3 (mean 2, sd 1, t = 2√3, p = 1/2 - 2√3/(2√14) = 0.0371 < 0.05) but
    human - single×2 = -1, 0, 1 (mean 0, not above 0): does not hold.
    middle: the same human - single, human - single×2 = 1, 1, 2 (mean 4/3 > 0): holds, chosen.
    costly: never trained: "not run (a cheaper cell holds)".
    confirm: human - single p = 0.0371 again; human - single×2 = 0.5, 1, 0.5 (mean 2/3, sd √(1/12), t = 4,
    p = 1/2 - 4/(2√18) = 0.0286). Holm: 2 × 0.0286 = 0.0572, then max(0.0572, 1 × 0.0371) = 0.0572: neither
    holds after adjustment, though both do before it.
    """
    monkeypatch.chdir(tmp_path)
    params = Params.model_validate(_raw())
    human, single = [11.0, 12.0, 13.0], [10.0, 10.0, 10.0]
    _write("cheap", [7, 8, 9], {"c100-human": human, "c100-single": single, "c100-single-scale2": [12.0, 12, 12]})
    _write("middle", [7, 8, 9], {"c100-human": human, "c100-single": single, "c100-single-scale2": [10.0, 11, 11]})
    _write(
        "confirm", [20, 21, 22], {"c100-human": human, "c100-single": single, "c100-single-scale2": [10.5, 11, 12.5]}
    )

    table = search_table(params, "pc").set_index("profile")
    p_base, p_step = t2_upper_tail(2 * math.sqrt(3)), t2_upper_tail(4.0)
    assert p_base == pytest.approx(0.0371, abs=1e-4) and p_step == pytest.approx(0.0286, abs=1e-4)

    assert table.loc["cheap", "status"] == "does not hold"
    assert table.loc["cheap", "task_minus_baseline"] == pytest.approx(2.0)
    assert table.loc["cheap", "baseline_p"] == pytest.approx(p_base)
    assert table.loc["cheap", "task_minus_step_control"] == pytest.approx(0.0)
    assert table.loc["middle", "status"] == "holds" and table.loc["middle", "chosen"]
    assert table.loc["middle", "task_minus_step_control"] == pytest.approx(4 / 3)
    assert table.loc["middle", "train_minutes"] == pytest.approx(9 * 4 * 15.0 / 60)
    assert table.loc["costly", "status"] == "not run (a cheaper cell holds)"
    confirm = table.loc["confirm"]
    assert confirm["stage"] == "confirmation"
    assert confirm["step_p"] == pytest.approx(p_step)
    assert confirm["baseline_p_holm"] == pytest.approx(2 * p_step) and confirm["step_p_holm"] == pytest.approx(
        2 * p_step
    )
    assert confirm["status"] == "fails"


def test_a_cell_not_yet_run_says_so_and_a_partial_one_is_not_judged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = Params.model_validate(_raw(confirmation=None))
    assert set(search_table(params, "pc").status) == {"not run"}
    _write("cheap", [7, 8], {"c100-human": [1.0, 2.0]})
    human, single = [11.0, 12.0, 13.0], [10.0, 10.0, 10.0]
    _write("middle", [7, 8, 9], {"c100-human": human, "c100-single": single, "c100-single-scale2": [10.0, 11, 11]})
    table = search_table(params, "pc").set_index("profile")
    assert table.loc["cheap", "status"] == "partly trained (2 of 9 runs): not judged"
    assert table.loc["middle", "status"] == "holds" and not table.loc["middle", "chosen"]  # cheap may still hold


def test_write_search_names_unknown_searches(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"no search 'other'.*declared: pc"):
        write_search(Params.model_validate(_raw()), "other", tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["cells"].append("nowhere"), "searches.pc names profile 'nowhere'"),
        (lambda s: s.update(step_control="c100-gone"), "searches.pc names experiment 'c100-gone'"),
        (lambda s: s.update(metric="test_acc_best_test"), "searches.pc.metric"),
    ],
)
def test_a_bad_search_is_refused_when_params_load(tmp_path, edit, message):
    raw = _raw()
    edit(raw["searches"]["pc"])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message):
        load_params(path)


def test_the_trend_per_doubling_of_compute_and_where_it_crosses_zero():
    """Judged cells at compute 1, 2, 4 with task - baseline -2, -1, 0: exactly +1 pp per doubling (no residual, so
    the interval has no width), intercept -2 at compute 1, zero at 2² = 4. Falling differences give no crossing;
    a cell not run and the confirmation do not enter the line."""
    from rlaux.report.search import trend

    table = pd.DataFrame(
        {
            "stage": ["search"] * 4 + ["confirmation"],
            "compute": [1.0, 2.0, 4.0, 8.0, 1.0],
            "task_minus_baseline": [-2.0, -1.0, 0.0, math.nan, 9.0],
        }
    )
    line = trend(table)
    assert (line["slope"], line["intercept"], line["n"]) == (pytest.approx(1.0), pytest.approx(-2.0), 3)
    assert line["slope_low"] == pytest.approx(1.0) and line["slope_high"] == pytest.approx(1.0)
    assert line["target_at_compute"] == pytest.approx(4.0) and line["largest_judged"] == 4.0
    assert trend(table, target=3.0)["target_at_compute"] == pytest.approx(2.0**5)  # -2 + log2(c) = 3
    falling = trend(table.assign(task_minus_baseline=[0.0, -1.0, -2.5, math.nan, 9.0]))
    assert falling["slope"] < 0 and math.isnan(falling["target_at_compute"])
    assert math.isnan(trend(table.iloc[:2])["slope"])


def test_relative_compute_is_width_squared_epochs_and_images(tmp_path, monkeypatch):
    """width 0.5, 40 epochs, 1,111 images: 0.25 x 40 x 1.111 = 11.11."""
    from rlaux.report.search import relative_compute

    raw = _raw()
    raw["profiles"]["costly"] = raw["profiles"]["costly"] | {
        "settings": {"width": 0.5, "epochs": 40},
        "datasets": {"cifar100-20": {"train_size": 1111}},
    }
    assert relative_compute(Params.model_validate(raw), "costly", "c100-single") == pytest.approx(11.11)


RETEST_ARMS = ARMS | {
    "c100-rl": {"dataset": "cifar100-20", "method": "rl"},
    "c100-rl-placebo": {"dataset": "cifar100-20", "method": "rl", "rl": {"placebo": True}},
}


RETESTED = ["c100-single", "c100-human", "c100-rl", "c100-rl-placebo"]


def _retest_raw() -> dict:
    raw = _raw(confirmation=None)
    raw["experiments"] = RETEST_ARMS
    raw["profiles"]["re"] = raw["profiles"]["middle"] | {"seed_pool": [30, 31, 32], "only": RETESTED}
    raw["searches"]["pc"]["retest"] = ["re"]
    return raw


def _write_full(profile: str, seeds: list[int], arm: str, accs: list[float], agreement: list[float] | None) -> None:
    """A finished run: both claim metrics (last15 = best_val - 1), a validation accuracy and, for RL, its history."""
    for seed, acc in zip(seeds, accs, strict=True):
        run = Path("runs", profile, arm, f"s{seed}")
        run.mkdir(parents=True)
        metrics = {"test_acc_best_val": acc, "test_acc_last15": acc - 1, "val_acc_best": acc, "epochs": 5}
        (run / "metrics.json").write_text(json.dumps(metrics))
        history = pd.DataFrame({"epoch": range(1, 6)})
        if agreement is not None:
            history["rl/fine_agreement"] = agreement
        history.to_csv(run / "history.csv", index=False)


def test_with_no_cell_holding_the_retest_runs_the_claims_at_the_most_promising_cell(tmp_path, monkeypatch):
    """Search: cheap human - single = 0 (does not hold), middle = 1/3 with human - single×2 < 0 (does not hold):
    middle is the most promising. Re-test at middle's settings, seeds 30-32:
    RL - placebo = 1, 2, 3: mean 2, one-sided p = 1/2 - 2√3/(2√14) = 0.0371, two-sided 0.0742;
    RL - single = 2, 2, 2 (no variance: untestable, not in the Holm family);
    RL - human = 0, 1, 2: mean 1, sd 1, t = √3, one-sided p = 1/2 - √3/(2√5) = 0.1127, two-sided 0.2254;
    human - single = 2, 1, 0: the same as RL - human. Holm over the 3 testable two-sided p: 3 x 0.0742 = 0.2226.
    Fine agreement: RL's last 3 epochs 0.3, 0.4, 0.5 (0.4 per seed); the placebo's 0.2."""
    monkeypatch.chdir(tmp_path)
    params = Params.model_validate(_retest_raw())
    _write("cheap", [7, 8, 9], {"c100-human": [10.0] * 3, "c100-single": [10.0] * 3, "c100-single-scale2": [9.0] * 3})
    _write(
        "middle", [7, 8, 9], {"c100-human": [11.0, 10, 10], "c100-single": [10.0] * 3, "c100-single-scale2": [12.0] * 3}
    )
    seeds = [30, 31, 32]
    _write_full("re", seeds, "c100-single", [10.0, 10, 10], None)
    _write_full("re", seeds, "c100-human", [12.0, 11, 10], None)
    _write_full("re", seeds, "c100-rl", [12.0, 12, 12], [0.1, 0.2, 0.3, 0.4, 0.5])
    _write_full("re", seeds, "c100-rl-placebo", [11.0, 10, 9], [0.2] * 5)

    from rlaux.report.search import most_promising, retest_tables

    table = search_table(params, "pc")
    assert set(table.status) == {"does not hold", "not run"} and most_promising(table) == "middle"
    claims, agent, status = retest_tables(params, "pc", table)
    assert status == "at middle"
    best = claims[claims.metric == "test_acc_best_val"].set_index("claim")
    assert list(best.index) == [
        "Human labels beat single-task learning",
        "RL-AUX beats its placebo",
        "RL-AUX beats single-task learning",
        "RL-AUX beats the human auxiliary task",
    ]
    placebo = best.loc["RL-AUX beats its placebo"]
    p_rl = t2_upper_tail(2 * math.sqrt(3))
    assert (placebo.n, placebo.mean_difference) == (3, pytest.approx(2.0))
    assert placebo.p_value == pytest.approx(p_rl)
    assert placebo.p_holm == pytest.approx(3 * 2 * p_rl)
    assert best.loc["RL-AUX beats the human auxiliary task", "p_value"] == pytest.approx(t2_upper_tail(math.sqrt(3)))
    assert math.isnan(best.loc["RL-AUX beats single-task learning", "p_holm"])
    assert (best.family_size == 3).all()
    last15 = claims[claims.metric == "test_acc_last15"].set_index("claim")
    assert last15.loc["RL-AUX beats its placebo", "mean_difference"] == pytest.approx(2.0)  # both arms shift by 1
    agent = agent.set_index("experiment")
    assert agent.loc["c100-rl", "fine_agreement"] == pytest.approx(0.4)
    assert agent.loc["c100-rl-placebo", "fine_agreement"] == pytest.approx(0.2)
    assert list(agent.seeds) == [3, 3] and "c100-human" not in agent.index


def test_a_retest_waits_for_its_runs_and_must_run_the_promising_cells_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = _retest_raw()
    params = Params.model_validate(raw)
    _write("cheap", [7, 8, 9], {"c100-human": [10.0] * 3, "c100-single": [10.0] * 3, "c100-single-scale2": [9.0] * 3})
    _write(
        "middle", [7, 8, 9], {"c100-human": [11.0, 10, 10], "c100-single": [10.0] * 3, "c100-single-scale2": [12.0] * 3}
    )
    _write_full("re", [30, 31], "c100-rl", [12.0, 12], [0.2] * 5)

    from rlaux.report.search import retest_tables

    table = search_table(params, "pc")
    claims, agent, status = retest_tables(params, "pc", table)
    assert claims.empty and agent.empty
    assert status == "at middle; not judged yet: re 2 of 12 runs"
    raw["profiles"]["re"]["settings"] = {"width": 0.5}
    with pytest.raises(ConfigError, match=r"'re' must run the most promising cell 'middle'"):
        retest_tables(Params.model_validate(raw), "pc", table)
    held = table.assign(status=["holds", "does not hold", "not run"])
    assert retest_tables(params, "pc", held)[2].startswith("a cell holds")
    # registered at `cheap` (the most promising cell under the rules then): it stays there, and says where it is now
    raw = _retest_raw()
    raw["profiles"]["re"] = raw["profiles"]["cheap"] | {"seed_pool": [30, 31, 32], "only": RETESTED}
    raw["searches"]["pc"]["retest_cell"] = "cheap"
    status = retest_tables(Params.model_validate(raw), "pc", table)[2]
    assert (
        status
        == "at cheap, where it was registered; under today's rules the most promising cell is middle; not judged yet: re 2 of 12 runs"
    )


def test_the_report_reads_the_retest_beside_the_search_table(tmp_path):
    """<name>_retest.csv and <name>_agent.csv beside <name>.csv; an empty file (no profile finished) reads as an
    empty table; either file missing: no re-test."""
    from rlaux.report.search import Retest

    table = tmp_path / "pc.csv"
    assert Retest.read(table) is None
    pd.DataFrame({"claim": ["c"], "n": [8]}).to_csv(tmp_path / "pc_retest.csv", index=False)
    assert Retest.read(table) is None
    for empty in ("\n", "\r\n"):  # DataFrame().to_csv, write_csv([])
        (tmp_path / "pc_agent.csv").write_text(empty, newline="")
        read = Retest.read(table)
        assert read is not None and list(read.claims.n) == [8] and read.agent.empty


def test_the_second_rounds_rule_needs_both_differences_after_holm_and_a_settled_baseline(tmp_path, monkeypatch):
    """Arms as templates over two datasets ("{p}-human"), p-values by hand (t with 2 degrees of freedom):
    c100 (cheapest): human - single = human - single×2 = 1, 2, 3 (t = 2√3, p = 0.0371 each); Holm doubles the smaller
    of two equal p: 0.0742 > 0.05, does not hold though each p is below 0.05.
    rising: human - single = human - single×2 = 2, 3, 4 (t = 3√3, p = 1/2 - 3√3/(2√29) = 0.01755; Holm 0.0351 each)
    but single's test accuracy still climbs 1 pp per epoch over its last quarter (epochs 3-4): not settled.
    flat: the same differences, single flat over its last quarter (slope 0 < 0.5): holds, and is chosen.
    pruned: never run, listed as pruned."""
    monkeypatch.chdir(tmp_path)
    raw = _raw(confirmation=None)
    arms = dict(ARMS) | {
        "pairs-human": {"dataset": "cifar10-pairs", "method": "human", "psi": 2},
        "pairs-single": {"dataset": "cifar10-pairs", "method": "single", "psi": 2},
        "pairs-single-scale2": {"dataset": "cifar10-pairs", "method": "single", "psi": 2, "primary_loss_scale": 2},
    }
    pairs_cell = {"seeds": 3, "seed_pool": [7, 8, 9], "datasets": {"cifar10-pairs": {}}, "only": list(arms)[3:]}
    raw["experiments"] = arms
    raw["profiles"] |= {"rising": pairs_cell, "flat": pairs_cell, "big": pairs_cell}
    raw["searches"]["pc"] = {
        "cells": ["cheap", "rising", "flat"],
        "pruned": ["big"],
        "task": "{p}-human",
        "baseline": "{p}-single",
        "step_control": "{p}-single-scale2",
        "rule": "both",
        "settled_slope": 0.5,
        "budget_cpu_hours": 1.0,
        "cost_cpu_hours": {"cheap": 0.2, "rising": 0.3, "flat": 0.4, "big": 2.0},
    }
    params = Params.model_validate(raw)
    single = [10.0, 10.0, 10.0]
    _write("cheap", [7, 8, 9], {"c100-human": [11.0, 12, 13], "c100-single": single, "c100-single-scale2": single})
    for cell, last in (("rising", [9.0, 10.0]), ("flat", [10.0, 10.0])):
        accs = {"pairs-human": [12.0, 13, 14], "pairs-single": single, "pairs-single-scale2": single}
        _write(cell, [7, 8, 9], accs)
        for seed in (7, 8, 9):
            history = pd.DataFrame({"epoch": [1, 2, 3, 4], "test_acc": [5.0, 7.0, *last]})
            history.to_csv(Path("runs", cell, "pairs-single", f"s{seed}", "history.csv"), index=False)
    table = search_table(params, "pc").set_index("profile")
    p_cheap, p_pairs = t2_upper_tail(2 * math.sqrt(3)), t2_upper_tail(3 * math.sqrt(3))
    assert table.loc["cheap", "step_p"] == pytest.approx(p_cheap) and table.loc["cheap", "baseline_p"] < 0.05
    assert table.loc["cheap", "baseline_p_holm"] == pytest.approx(2 * p_cheap)  # 0.0742
    assert table.loc["cheap", "status"] == "does not hold"
    assert table.loc["rising", "step_p_holm"] == pytest.approx(2 * p_pairs) and 2 * p_pairs < 0.05
    assert table.loc["rising", "settling_slope"] == pytest.approx(1.0) and not table.loc["rising", "settled"]
    assert table.loc["rising", "status"] == "does not hold"
    assert table.loc["flat", "settling_slope"] == pytest.approx(0.0) and table.loc["flat", "status"] == "holds"
    assert table.chosen.fillna(False).astype(bool).tolist() == [False, False, True, False]
    assert table.loc["big", "stage"] == "pruned" and table.loc["big", "status"].startswith("pruned before running")
    with pytest.raises(ConfigError, match="over its budget_cpu_hours 1; prune cells"):
        (tmp_path / "params.yaml").write_text(
            yaml.safe_dump(
                raw
                | {
                    "searches": {
                        "pc": raw["searches"]["pc"] | {"cells": ["cheap", "rising", "flat", "big"], "pruned": []}
                    }
                }
            )
        )
        load_params(tmp_path / "params.yaml")


CHAIN_ARMS = {
    "pairs-single": {"dataset": "cifar10-pairs", "method": "single", "psi": 2},
    "pairs-human": {"dataset": "cifar10-pairs", "method": "human", "psi": 2},
    "pairs-rl": {"dataset": "cifar10-pairs", "method": "rl", "psi": 2},
    "pairs-rl-placebo": {"dataset": "cifar10-pairs", "method": "rl", "psi": 2, "rl": {"placebo": True}},
    "pairs-rl-untrained-asrun": {
        "dataset": "cifar10-pairs",
        "method": "rl",
        "psi": 2,
        "rl": {"train_agent": False},
        "errata": {"frozen_heads": True, "softmax_features": True},
    },
}


def _chain_raw() -> dict:
    raw = _raw(confirmation=None)
    raw["experiments"] = ARMS | CHAIN_ARMS
    chain = {"seeds": 3, "seed_pool": [70, 71, 72], "datasets": {"cifar10-pairs": {}}, "only": list(CHAIN_ARMS)}
    raw["profiles"]["chain"] = chain
    raw["searches"]["pc"] |= {
        "chain": "chain",
        "chain_claims": ["pairs-human > pairs-single", "pairs-rl > pairs-rl-placebo", "pairs-single > pairs-human"],
    }
    return raw


def _write_chain_run(arm: str, seed: int, acc: float, nmi: float | None, agreement: float | None) -> None:
    run = Path("runs", "chain", arm, f"s{seed}")
    run.mkdir(parents=True)
    metrics = {"test_acc_best_val": acc, "test_acc_last15": acc - 1, "val_acc_best": acc, "epochs": 4}
    (run / "metrics.json").write_text(json.dumps(metrics))
    history = pd.DataFrame({"epoch": [1, 2, 3, 4]})
    if nmi is not None:
        history["labels/nmi"] = [0.9, nmi, nmi, nmi]  # the first epoch falls outside the last 3
    if agreement is not None:
        history["rl/fine_agreement"] = [0.0, agreement, agreement, agreement]
    history.to_csv(run / "history.csv", index=False)


def test_the_chain_is_one_holm_family_of_one_sided_claims_judged_once_every_run_has_finished(tmp_path, monkeypatch):
    """Seeds 70-72 (t with 2 degrees of freedom):
    human - single = 3, 4, 5: t = 4√3, p1 = 1/2 - 4√3/(2√50) = 0.0101; RL - placebo = 1, 2, 3: p2 = 0.0371;
    single - human = -3, -4, -5: p3 = 1 - p1. Holm: 3 p1 = 0.0303 (holds), 2 p2 = 0.0742 (does not hold), p3
    (does not hold, its whole 95% interval, -4 ± 4.303/√3, below 0). Labels over the last 3 epochs: RL's NMI 0.2
    and sampled agreement 0.6; the untrained arm has NMI 0.05 and no sampled labels. Randomized Task: the paper's
    75.70 - 71.864 = +3.836 beside ours, untrained as-run - single = 1, 1, 2 (mean 4/3)."""
    monkeypatch.chdir(tmp_path)
    params = Params.model_validate(_chain_raw())
    accs = {
        "pairs-single": [10.0, 10, 10],
        "pairs-human": [13.0, 14, 15],
        "pairs-rl": [11.0, 12, 13],
        "pairs-rl-placebo": [10.0, 10, 10],
        "pairs-rl-untrained-asrun": [11.0, 11, 12],
    }
    labels = {"pairs-rl": (0.2, 0.6), "pairs-rl-placebo": (0.1, 0.5), "pairs-rl-untrained-asrun": (0.05, None)}

    from rlaux.report.search import chain_tables

    for arm, values in accs.items():
        for seed, acc in zip([70, 71, 72], values, strict=True):
            if (arm, seed) != ("pairs-rl", 72):  # one run still training
                _write_chain_run(arm, seed, acc, *labels.get(arm, (None, None)))
    claims, agent, compare, status = chain_tables(params, "pc")
    assert claims.empty and agent.empty and not compare
    assert status.startswith("not judged yet: 14 of 15 runs finished") and "pairs-rl 2" in status
    _write_chain_run("pairs-rl", 72, 13.0, *labels["pairs-rl"])
    paper = pd.DataFrame(
        {
            "figure": [4, None],
            "experiment": ["c100-single", "c100-rl-untrained-asrun"],
            "metric": ["test_acc_last15"] * 2,
            "value": [71.864, 75.70],
        }
    )
    claims, agent, compare, status = chain_tables(params, "pc", paper)
    assert status == "at chain, 15 runs"
    best = claims[claims.metric == "test_acc_best_val"].set_index("claim")
    p1, p2 = t2_upper_tail(4 * math.sqrt(3)), t2_upper_tail(2 * math.sqrt(3))
    assert best.p_value.tolist() == pytest.approx([p1, p2, 1 - p1])
    assert best.p_holm.tolist() == pytest.approx([3 * p1, 2 * p2, 1 - p1])
    assert best.verdict.tolist() == ["holds", "does not hold", "does not hold (the 95% interval is below 0)"]
    assert (best.mde_80 > 0).all()
    assert claims.metric.tolist() == ["test_acc_best_val"] * 3 + ["test_acc_last15"] * 3  # the registered one first
    agent = agent.set_index("experiment")
    assert agent.label_nmi.to_dict() == pytest.approx(
        {"pairs-rl": 0.2, "pairs-rl-placebo": 0.1, "pairs-rl-untrained-asrun": 0.05}
    )
    assert agent.loc["pairs-rl", "fine_agreement"] == pytest.approx(0.6) and agent.loc["pairs-rl", "above_chance"]
    assert math.isnan(agent.loc["pairs-rl-untrained-asrun", "fine_agreement"])
    assert compare["paper_difference"] == pytest.approx(3.836) and compare["mean_difference"] == pytest.approx(4 / 3)
    assert compare["n"] == 3
    from rlaux.report.search import chain_figures, chain_markdown

    search = params.searches["pc"]
    assert chain_figures(params, search) == ["fig-pairs"]  # report.yaml's figures of the chain's dataset
    text = chain_markdown("pc", search, claims, agent.reset_index(), compare, chain_figures(params, search))
    assert "![fig-pairs](../../figures/chain/fig-pairs.png)" in text  # drawn by the chain_figures stage


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (["pairs-human >> pairs-single"], "is not 'better > worse'"),
        (["pairs-human"], "is not 'better > worse'"),
        (["pairs-human > c100-single"], "names 'c100-single', which the chain profile 'chain' does not run"),
    ],
)
def test_a_chain_claim_must_be_two_arms_of_the_chain(tmp_path, claims, message):
    raw = _chain_raw()
    raw["searches"]["pc"]["chain_claims"] = claims
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message):
        load_params(tmp_path / "params.yaml")
