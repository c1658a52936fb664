"""The answer, generated (issue 34 item 7): the README's answer and the study report's opening are what
`rlaux.report.answer` writes from the committed tables, at most 4 sentences and 120 words, leading with the positive
control; hand-built tables say whether the control holds; the smoke report's opening quotes no search."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_pipeline import REPO
from test_report import _search_and_retest, _smoke_like_runs

from rlaux.cli import main
from rlaux.errors import UserError
from rlaux.experiments import load_params
from rlaux.report.answer import (
    MARK_CLOSE,
    MARK_OPEN,
    MAX_SENTENCES,
    MAX_WORDS,
    FollowUps,
    answer,
    block,
    sentences,
    study_answer,
    words,
)
from rlaux.report.claims import all_claims
from rlaux.report.readme import render
from rlaux.report.search import Chain, Retest


def _short(text: str) -> None:
    assert len(sentences(text)) <= MAX_SENTENCES, text
    assert words(text) <= MAX_WORDS, text


def test_the_readme_answer_is_what_the_committed_tables_give():
    """Any difference between README.md's block and the generator on the committed tables fails here: regenerate
    with `rlaux answer --write README.md`."""
    generated = study_answer(REPO)
    assert block((REPO / "README.md").read_text()) == generated
    main(["answer", "--root", str(REPO), "--check", str(REPO / "README.md")])  # the CLI agrees: no SystemExit


def test_the_study_report_opens_with_the_readme_answer():
    """paper_tables/study/README.md (written by `dvc repro tables`) opens with the same generated text."""
    lines = (REPO / "paper_tables" / "study" / "README.md").read_text().splitlines()
    assert lines[2] == f"**The answer:** {study_answer(REPO)}"


def test_the_committed_answer_is_short_and_leads_with_the_positive_control():
    text = study_answer(REPO)
    _short(text)
    first = sentences(text)[0]
    assert first.startswith("The positive control ")
    assert "beat single-task learning" in first and "single-task with its loss ×2" in first
    assert sentences(text)[1].startswith("So ")  # what the control means for the verdicts on RL-AUX
    for typed in ("1/8", "9,000", "50,000"):  # the hand-typed answer's numbers come from no table
        assert typed not in text


def _claims(control: float, control_verdict: str, profile: str = "study") -> pd.DataFrame:
    """Three claims on the registered metric (and one on another metric, which the answer never quotes)."""
    rows = [
        ("Human labels beat single-task learning", control, control_verdict, 4.0),
        ("RL-AUX beats its placebo", -0.5, "inconclusive (wrong direction)", 3.0),
        ("RL-AUX beats single-task learning", 0.4, "inconclusive (right direction)", 5.5),
    ]
    table = pd.DataFrame(
        [
            {"claim": c, "dataset": "cifar100-20", "profile": profile, "metric": "test_acc_best_val", "n": 5}
            | {"mean_difference": d, "ci95_low": d - 1.0, "ci95_high": d + 1.0, "p_holm": 0.5, "mde_80": mde}
            | {"verdict": v}
            for c, d, v, mde in rows
        ]
    )
    other = table.iloc[:1].assign(metric="test_acc_last15", mean_difference=9.99, verdict="holds (...)")
    return pd.concat([table, other], ignore_index=True)


def _search(statuses: list[str], gains: list[float], holm: bool = False) -> pd.DataFrame:
    """Cells g1, g2, ... of a search: task - baseline `gains`, task - step control one pp less."""
    n = len(statuses)
    judged = [s in ("holds", "does not hold") for s in statuses]
    table = pd.DataFrame(
        {
            "stage": ["search"] * n,
            "profile": [f"g{i + 1}" for i in range(n)],
            "task_minus_baseline": [g if j else math.nan for g, j in zip(gains, judged, strict=True)],
            "baseline_p": [0.001 if s == "holds" else 0.3 for s in statuses],
            "task_minus_step_control": [g - 1.0 if j else math.nan for g, j in zip(gains, judged, strict=True)],
            "step_p": [0.02 if s == "holds" else 0.6 for s in statuses],
            "status": statuses,
            "chosen": [s == "holds" for s in statuses],
        }
    )
    if holm:
        table = table.assign(baseline_p_holm=table.baseline_p * 2, step_p_holm=table.step_p)
    pruned = pd.DataFrame({"stage": ["pruned"], "profile": ["big"], "status": ["pruned before running (over)"]})
    return pd.concat([table, pruned], ignore_index=True)


def _retest() -> Retest:
    claims = pd.DataFrame(
        {
            "claim": ["RL-AUX beats its placebo", "RL-AUX beats single-task learning", "RL-AUX beats its placebo"],
            "metric": ["test_acc_best_val", "test_acc_best_val", "test_acc_last15"],
            "n": [8, 8, 8],
            "mean_difference": [-0.55, 1.0, 5.0],
            "p_holm": [0.95, 0.16, 0.001],
            "verdict": ["inconclusive (...)", "inconclusive (...)", "holds (...)"],
        }
    )
    agent = pd.DataFrame(
        {"experiment": ["c100-rl"], "fine_agreement": [0.2], "ci95": [0.008], "chance": [0.2], "above_chance": [False]}
    )
    return Retest(claims, agent)


def _dose() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "credit": ["paper", "paper", "sample", "sample", "sample"],
            "oracle_noise": [0.0, 0.0, 0.0, 0.0, 0.5],
            "fine_agreement": [0.2, 0.21, 0.33, 0.32, 0.2],
        }
    )


def test_hand_built_tables_where_the_positive_control_holds_or_fails():
    claims = _claims(-0.35, "inconclusive (wrong direction)")
    fails = FollowUps(searches=(_search(["does not hold", "does not hold"], [-1.0, 0.5]),), retest=_retest())
    text = answer(claims, fails)
    _short(text)
    assert sentences(text)[0] == (
        "The positive control fails: human labels beat both single-task learning and single-task with its loss ×2 in "
        "none of the 2 cells of the first registered search (best, g2: +0.50 and -0.50 pp)."
    )
    assert sentences(text)[1] == (
        "So the assay cannot see an auxiliary-task gain, and its verdicts on RL-AUX say little: all 3 of the study "
        "profile's claims are inconclusive after Holm adjustment (its control: -0.35 pp; detectable at 80% power: "
        "3.0–5.5 pp)."
    )
    assert sentences(text)[2] == (
        "Re-tested on 8 fresh seeds there, 0 of 2 claims hold: RL-AUX does not beat its placebo (-0.55 pp, Holm p = "
        "0.95), and its agent's fine-label agreement is at chance (0.200 ± 0.008, chance 0.20)."
    )
    assert "9.99" not in text  # another metric's number: not registered, not quoted
    registered = _retest()
    registered = Retest(registered.claims.assign(cell="g1"), registered.agent)  # where it ran, not the best cell now
    assert "Re-tested on 8 fresh seeds at g1, 0 of 2" in answer(claims, FollowUps(fails.searches, registered))

    holds = FollowUps(searches=(_search(["does not hold", "holds", "not run (a cheaper cell holds)"], [0.0, 3.0, 0]),))
    text = answer(claims, holds)
    _short(text)
    assert sentences(text)[0] == (
        "The positive control holds: in the first registered search's cell g2, human labels beat single-task learning "
        "(+3.00 pp, one-sided p = 0.001) and single-task with its loss ×2 (+2.00 pp, one-sided p = 0.02)."
    )
    assert sentences(text)[1].startswith("So an auxiliary-task gain is visible there, where RL-AUX is yet to be tested")

    # no search: the profile's own control claim, holding or not
    text = answer(_claims(3.0, "holds (Holm-adjusted p = 0.01)"))
    _short(text)
    assert sentences(text)[0] == (
        "The positive control holds: human labels beat single-task learning on CIFAR-100-20 (+3.00 pp, 95% CI 2.00 to "
        "4.00, Holm p = 0.50)."
    )
    assert sentences(text)[1].startswith("So the assay can see an auxiliary-task gain, and its verdicts on RL-AUX can")
    assert "1 holds (Human labels beat single-task learning, CIFAR-100-20)" in text
    assert answer(claims).startswith("The positive control fails: human labels do not beat single-task learning on")
    no_control = claims[claims.claim != "Human labels beat single-task learning"]
    assert answer(no_control).startswith("This profile has no positive control: no human auxiliary task was run.")


def test_the_second_search_running_judged_so_far_or_holding():
    claims = _claims(-0.35, "inconclusive (wrong direction)")
    first = _search(["does not hold", "does not hold"], [-1.0, 0.5])
    running = _search(["not run", "partly trained (6 of 15 runs): not judged", "not run"], [0, 0, 0], holm=True)
    text = answer(claims, FollowUps(searches=(first, running), retest=_retest()))
    _short(text)
    assert sentences(text)[0].endswith(
        "(best, g2: +0.50 and -0.50 pp); the second is running (3 cells in budget, none judged yet)."
    )
    assert "Re-tested on 8 fresh seeds there" in text
    partly = _search(["does not hold", "not run", "not run"], [5.96, 0, 0], holm=True)
    text = answer(claims, FollowUps(searches=(first, partly), retest=_retest()))
    _short(text)
    assert (
        "in none of the 2 cells of the first registered search or the 1 of the second's 3 cells judged so far "
        "(best, g1: +5.96 and +4.96 pp)." in text
    )
    assert "Re-tested on 8 fresh seeds at g2" in text  # the re-test's cell is the first search's, not the best
    whole = _search(["does not hold"] * 3, [1.0, 2.0, 0.0], holm=True)
    assert "or the 3 of the second (best, g2: +2.00 and +1.00 pp)" in answer(claims, FollowUps(searches=(first, whole)))
    holding = _search(["does not hold", "holds", "not run"], [1.0, 4.0, 0.0], holm=True)
    text = answer(claims, FollowUps(searches=(first, holding), retest=_retest()))
    _short(text)
    assert sentences(text)[0] == (
        "The positive control holds: in the second registered search's cell g2, human labels beat single-task "
        "learning (+4.00 pp, Holm p = 0.002) and single-task with its loss ×2 (+3.00 pp, Holm p = 0.02)."
    )
    # a confirmation that holds is the registered verdict: its own numbers are quoted, with its seeds
    confirmation = pd.DataFrame(
        {
            "stage": ["confirmation"],
            "profile": ["confirm"],
            "n": [10],
            "task_minus_baseline": [5.57],
            "baseline_p_holm": [0.0006],
            "task_minus_step_control": [4.87],
            "step_p_holm": [0.0007],
            "status": ["holds"],
        }
    )
    confirmed = pd.concat([holding, confirmation], ignore_index=True)
    assert sentences(answer(claims, FollowUps(searches=(first, confirmed))))[0] == (
        "The positive control holds: in the second registered search's cell g2, on 10 fresh seeds (the registered "
        "confirmation), human labels beat single-task learning (+5.57 pp, Holm p = 0.0006) and single-task with its "
        "loss ×2 (+4.87 pp, Holm p = 0.0007)."
    )
    failed = confirmed.assign(status=["does not hold", "holds", "not run", "pruned before running (over)", "fails"])
    assert sentences(answer(claims, FollowUps(searches=(first, failed))))[0].endswith(
        "(+3.00 pp, Holm p = 0.02), not confirmed on its fresh seeds."
    )
    # the first search not written yet, the second running: the profile's own control, and the search's state
    text = answer(claims, FollowUps(searches=(None, running)))
    assert sentences(text)[0].startswith("The positive control fails: human labels do not beat single-task learning")
    assert sentences(text)[0].endswith(
        "; the second registered search is running (3 cells in budget, none judged yet)."
    )


def _chain(placebo_holds: bool = False) -> Chain:
    """A judged chain's seven claims on the registered metric (and the other metric's family, never quoted), and its
    RL arms' labels."""
    claims = [
        ("pairs-human > pairs-single", 5.0, "holds"),
        ("pairs-human > pairs-single-scale2", 4.0, "holds"),
        ("pairs-rl > pairs-single", 1.0, "does not hold"),
        ("pairs-rl > pairs-single-scale2", -1.0, "does not hold (the 95% interval is below 0)"),
        ("pairs-rl > pairs-rl-placebo", 2.5 if placebo_holds else 0.25, "holds" if placebo_holds else "does not hold"),
        ("pairs-rl-sample > pairs-rl-placebo", -0.5, "does not hold"),
        ("pairs-oracle-sample > pairs-single", 3.0, "holds"),
    ]
    table = pd.DataFrame(
        [
            {"claim": c, "metric": "test_acc_best_val", "n": 8, "mean_difference": d, "verdict": v}
            | {"p_holm": 0.0004 if v == "holds" else 0.81}
            for c, d, v in claims
        ]
    )
    other = table.assign(metric="test_acc_last15", mean_difference=9.99, verdict="holds")
    agent = pd.DataFrame(
        {
            "experiment": ["pairs-rl", "pairs-rl-placebo", "pairs-rl-sample", "pairs-rl-untrained"],
            "fine_agreement": [0.51, 0.5, 0.62, math.nan],
            "ci95": [0.02, 0.01, 0.03, math.nan],
            "chance": [0.5] * 4,
            "above_chance": [False, False, True, False],
        }
    )
    return Chain(pd.concat([table, other], ignore_index=True), agent)


def test_a_judged_chain_says_what_rl_aux_did_where_the_control_holds(tmp_path):
    """Once the chain in the control's cell is judged, its registered claims (report.yaml's arms.chain) follow the
    control; the profile's own claims come after it as space allows; before, RL-AUX is 'yet to be tested' there."""
    claims = _claims(-0.35, "inconclusive (wrong direction)")
    first = _search(["does not hold", "does not hold"], [-1.0, 0.5])
    holding = _search(["does not hold", "holds", "not run"], [1.0, 4.0, 0.0], holm=True)
    text = answer(claims, FollowUps(searches=(first, holding), chains=(None, _chain()), retest=_retest()))
    _short(text)
    assert sentences(text)[1] == (
        "So RL-AUX was tested there (8 fresh seeds; 3 of 7 chain claims hold): as published it does not beat its "
        "placebo (+0.25 pp, Holm p = 0.81), with per-sample credit it does not beat it (-0.50 pp, Holm p = 0.81; its "
        "fine-label agreement 0.620 ± 0.030, above chance 0.50)."
    )
    assert sentences(text)[2].startswith(
        "On the paper's datasets, all 3 of the study profile's claims are inconclusive"
    )
    assert "9.99" not in text  # the other metric's family: the body's, not the answer's
    text = answer(claims, FollowUps(searches=(first, holding), chains=(None, _chain(placebo_holds=True))))
    assert "as published it beats its placebo (+2.50 pp, Holm p = 0.0004)" in text
    # a chain beside a search whose control does not hold is not quoted; nor is one not judged yet
    assert "chain" not in answer(claims, FollowUps(searches=(first,), chains=(_chain(),)))
    searches = tmp_path / "searches"
    searches.mkdir()
    holding.to_csv(searches / "positive_control_2.csv", index=False)
    for part in ("chain", "chain_agent"):
        (searches / f"positive_control_2_{part}.csv").write_text("\n")  # as `rlaux search` writes it unjudged
    follow = FollowUps.read(searches, tmp_path / "none.csv")
    assert follow.chains == (None, None)
    assert "where RL-AUX is yet to be tested" in answer(claims, follow)
    _chain().claims.to_csv(searches / "positive_control_2_chain.csv", index=False)
    _chain().agent.to_csv(searches / "positive_control_2_chain_agent.csv", index=False)
    follow = FollowUps.read(searches, tmp_path / "none.csv")
    assert sentences(answer(claims, follow))[1].startswith("So RL-AUX was tested there (8 fresh seeds; 3 of 7")
    # a quoted claim the chain did not test is named
    untested = Chain(_chain().claims[_chain().claims.claim != "pairs-rl-sample > pairs-rl-placebo"], _chain().agent)
    with pytest.raises(UserError, match="'pairs-rl-sample > pairs-rl-placebo', which the chain did not test"):
        answer(claims, FollowUps(searches=(first, holding), chains=(None, untested)))


def test_the_re_test_and_the_oracle_as_space_allows():
    """Optional sentences come in order (re-test, oracle) only while the answer stays within its limits."""
    claims = _claims(-0.35, "inconclusive (wrong direction)")
    first = _search(["does not hold", "does not hold"], [-1.0, 0.5])
    text = answer(claims, FollowUps(searches=(first,), dose=_dose()))  # no re-test: the oracle fits
    _short(text)
    assert sentences(text)[2] == (
        "With a noiseless oracle reward (the answer itself), the agent's fine agreement ends at 0.205 ± 0.064 under "
        "the paper's credit and 0.325 ± 0.064 under per-sample credit."
    )
    text = answer(claims, FollowUps(searches=(first,), retest=_retest(), dose=_dose()))
    _short(text)
    assert "Re-tested" in text and "oracle" not in text  # both would pass 120 words: the re-test comes first
    assert words(f"{text} {sentences(answer(claims, FollowUps(searches=(first,), dose=_dose())))[2]}") > MAX_WORDS


def test_the_smoke_reports_opening_quotes_no_search():
    """The smoke report opens with its own short answer, from its own claims alone, even when the study's search,
    re-test and dose-response are handed to it."""
    params = load_params(REPO / "params.yaml")
    params.profile = "smoke"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    search, retest = _search_and_retest()
    follow = FollowUps.read(REPO / "paper_tables" / "searches", REPO / "figures" / "oracle" / "dose_response.csv")
    text = render(params, _smoke_like_runs(), paper, REPO, REPO, search=search, retest=retest, follow=follow)
    opening = text.splitlines()[2]
    assert opening.startswith("**The answer:** The positive control fails: human labels do not beat single-task")
    for word in ("search", "Re-tested", "grid-", "oracle", "fresh seeds", "study"):
        assert word not in opening, word
    _short(opening.removeprefix("**The answer:** "))
    assert "## Fine agreement" not in text and "dose_response" not in text  # the study's follow-ups only


def test_the_study_report_shows_fine_agreement_and_the_dose_response():
    from test_pipeline import _synthetic_runs

    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    follow = FollowUps.read(REPO / "paper_tables" / "searches", REPO / "figures" / "oracle" / "dose_response.csv")
    out = REPO / "paper_tables" / "study"
    text = render(params, _synthetic_runs(), paper, out, REPO / "figures" / "study", follow=follow)
    assert "| RL-AUX | c100-rl | retest-w4-e40 | 8 | 0.200 | 0.192 to 0.209 | 0.20 | no |" in text
    assert "([positive_control.md](../searches/positive_control.md), section Re-test)" in text
    assert "![dose-response](../../figures/oracle/dose_response.png)" in text
    claims = all_claims(_synthetic_runs(), "study", paper)
    assert text.splitlines()[2] == f"**The answer:** {answer(claims, follow)}"  # the searched profile's follow-ups


def test_answer_check_names_the_first_difference_in_one_line_and_write_mends_it(tmp_path, capsys):
    root = tmp_path
    (root / "paper_tables" / "study").mkdir(parents=True)
    (root / "paper_tables" / "searches").mkdir(parents=True)
    _claims(-0.35, "inconclusive (wrong direction)").to_csv(root / "paper_tables" / "study" / "claims.csv", index=False)
    _search(["does not hold"], [0.5]).to_csv(root / "paper_tables" / "searches" / "positive_control.csv", index=False)
    readme = root / "README.md"
    readme.write_text(f"# x\n\nlead-in:\n\n{MARK_OPEN}\nThe positive control holds.\n{MARK_CLOSE}\n\nrest\n")
    args = ["answer", "--root", str(root)]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--check", str(readme)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "word 4: 'holds.' where the tables give 'fails:'" in err and "rlaux answer --write" in err
    main([*args, "--write", str(readme)])
    main([*args, "--check", str(readme)])
    text = readme.read_text()
    assert text.startswith("# x\n\nlead-in:\n\n") and text.endswith(f"{MARK_CLOSE}\n\nrest\n")
    assert block(text) == study_answer(root)
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit):
        main([*args, "--check", str(readme)])
    assert "needs the answer's markers" in capsys.readouterr().err
