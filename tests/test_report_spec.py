"""The report declared as data (report.yaml, `rlaux.report.spec`): validated up front, every id in it real, and a
dataset reaching the claims, the figures and the answer through its entry (shown with cifar10-pairs)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml
from test_pipeline import REPO, _synthetic_runs

from rlaux.cli import main
from rlaux.errors import UserError
from rlaux.experiments import load_params
from rlaux.report import spec as spec_module
from rlaux.report.claims import all_claims, claim_list, trained_datasets
from rlaux.report.figures import write_figures
from rlaux.report.readme import render
from rlaux.report.spec import PROSE_FIELDS, load, parse

REPORT_TEXT = (REPO / "report.yaml").read_text(encoding="utf-8")


def _edited(edit) -> str:
    raw = yaml.safe_load(REPORT_TEXT)
    edit(raw)
    return yaml.safe_dump(raw, allow_unicode=True)


def test_every_experiment_the_spec_names_is_in_params_yaml():
    """A renamed experiment would leave a claim or a bar silently 'not run in this profile'."""
    experiments = set(load_params(REPO / "params.yaml").experiments)
    load().check(experiments)
    every = set(trained_datasets(pd.DataFrame({"dataset": list(load().datasets)})))
    assert {arm for c in claim_list(every) for arm in (c.better, c.worse) if not arm.startswith("best:")} <= experiments
    for bad, named in (("c10-rl", "c10-rl"), ("c100-human-lam", "c100-human-lam")):
        with pytest.raises(UserError, match=named):
            load().check(experiments - {e for e in experiments if e.startswith(bad)})


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda s: s["datasets"]["svhn"]["claims"].append("rl_teleports"), "rl_teleports"),
        (lambda s: s["datasets"].update({"mnist": {"claims": []}}), "mnist"),
        (lambda s: s["prose"].update(so_holds="So {verdicts}."), "verdicts"),
        (lambda s: s["prose"].pop("so_fails"), "so_fails"),
        (lambda s: s["datasets"]["cifar10"].pop("control"), "wa_rl_control"),
        (lambda s: s["figures"][0].update(dataset="imagenet"), "imagenet"),
        (lambda s: s["claims"].pop("placebo"), "placebo"),
        (lambda s: s["figures"][1].update(file="fig04"), "fig04"),
        (lambda s: s["claims"]["rl_single"].update(margn=0.5), "margn"),
    ],
)
def test_a_bad_spec_is_refused_naming_what_is_wrong(edit, named):
    with pytest.raises(UserError, match=named) as err:
        parse(_edited(edit))
    assert "report.yaml" in str(err.value)


def test_a_missing_spec_says_where_it_belongs(tmp_path, monkeypatch):
    monkeypatch.setattr(spec_module, "REPORT_YAML", tmp_path / "report.yaml")
    with pytest.raises(UserError, match=r"beside params\.yaml"):
        load()


def test_a_prose_template_is_filled_by_name_only():
    spec = load()
    with pytest.raises(TypeError, match="so_holds"):
        spec.sentence("so_holds", claim="x")
    assert spec.sentence("so_blind", claims="C") == "So a null verdict here cannot be told from a blind assay: C."
    assert set(spec.prose) == set(PROSE_FIELDS)


def test_the_spec_imports_no_torch():
    code = "import sys, rlaux.report.spec as s; s.load(); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_the_prose_comes_from_the_spec(tmp_path, monkeypatch):
    """Rewording a template in report.yaml rewords the report, with its numbers filled in by name."""
    reworded = _edited(
        lambda s: s["prose"].update(control_holds="CONTROL OK on {dataset} at {difference}.", no_control="NO CONTROL.")
    )
    (tmp_path / "report.yaml").write_text(reworded, encoding="utf-8")
    monkeypatch.setattr(spec_module, "REPORT_YAML", tmp_path / "report.yaml")
    params = load_params(REPO / "params.yaml")
    params.profile = "study"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    assert "**In detail:** NO CONTROL." in render(params, _synthetic_runs(), paper, REPO, REPO)
    text = render(params, _pairs_runs(), paper, REPO, REPO)
    assert "**In detail:** CONTROL OK on CIFAR-10 pairs (control) at +3." in text


def _pairs_runs() -> pd.DataFrame:
    """cifar10-pairs arms on 5 seeds: human = single + 3 pp, RL-AUX and its placebo + 1 pp (the placebo ±0.3 pp
    about RL-AUX, seed by seed), single ×2 = single."""
    c10 = _synthetic_runs()
    single = c10[c10.experiment == "c10-single"].assign(experiment="pairs-single", dataset="cifar10-pairs")
    arms = {"pairs-single-scale2": ("single", 0.0, 0.0), "pairs-human": ("human", 3.0, 0.1)}
    arms |= {"pairs-rl": ("rl", 1.0, 0.1), "pairs-rl-placebo": ("rl", 1.0, 0.1)}
    rows = [single] + [
        single.assign(
            experiment=exp,
            method=method,
            test_acc_best_val=single.test_acc_best_val + gain + single.seed * noise + flip,
            test_acc_last15=single.test_acc_last15 + gain + single.seed * noise + flip,
        )
        for exp, (method, gain, noise) in arms.items()
        for flip in [0.3 * (-1) ** single.seed if exp == "pairs-rl-placebo" else 0.0]
    ]
    return pd.concat(rows, ignore_index=True)


def test_cifar10_pairs_reaches_the_claims_figures_and_answer_through_its_spec_entry(tmp_path):
    """The suite's control dataset is `shown: trained`: a profile that trains it (the chain's) tests its claims,
    draws its figure and answers from its positive control; the study, which does not, lists none of it."""
    params = load_params(REPO / "params.yaml")
    params.profile = "chain-p5k-w8-m9"
    paper = pd.read_csv(REPO / "paper_tables" / "paper.csv")
    runs = _pairs_runs()
    cl = all_claims(runs, params.profile, paper)
    pairs = cl[(cl.dataset == "cifar10-pairs") & (cl.metric == "test_acc_best_val")]
    declared = load().datasets["cifar10-pairs"].claims
    assert list(pairs.claim) == [load().claims[k].text for k in declared]
    tested = pairs.set_index("claim").verdict
    assert tested["Human labels beat single-task learning"].startswith("holds")
    assert tested["Human labels beat single-task learning with its loss ×2"].startswith("holds")
    assert tested["RL-AUX beats its placebo"].startswith("inconclusive")

    drawn = {p.name for p in write_figures(runs, pd.DataFrame(), paper, params.profile, tmp_path / "pairs")}
    assert "fig-pairs.png" in drawn
    text = render(params, runs, paper, tmp_path, tmp_path / "pairs")
    assert text.splitlines()[2].startswith(
        "**The answer:** The positive control holds: human labels beat single-task learning on CIFAR-10 pairs"
    )
    assert "### CIFAR-10 pairs (the suite's control): the chain's arms" in text
    assert "| Human labels beat single-task learning with its loss ×2 | holds" in text

    study = _synthetic_runs()
    assert not (all_claims(study, "study", paper).dataset == "cifar10-pairs").any()
    drawn = {p.name for p in write_figures(study, pd.DataFrame(), paper, "study", tmp_path / "study")}
    assert "fig-pairs.png" not in drawn and "fig04.png" in drawn


def test_a_profile_of_its_own_draws_only_the_figures_asked_for(tmp_path, capsys):
    """`rlaux figures --profile P --only fig-pairs` (the chain's figure stage): that figure alone, headed with P; an
    unknown figure or profile is refused, naming the known ones, before anything is drawn."""
    results = tmp_path / "results"
    results.mkdir()
    _pairs_runs().to_csv(results / "runs.csv", index=False)
    pd.DataFrame().to_csv(results / "curves.csv", index=False)
    args = ["figures", "--params", str(REPO / "params.yaml"), "--results", str(results), "--paper"]
    args += [str(REPO / "paper_tables" / "paper.csv"), "--profile", "chain-p5k-w8-m9", "--out", str(tmp_path / "f")]
    main([*args, "--only", "fig-pairs"])
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["fig-pairs.png"]
    main([*args, "--only", "fig-pairs", "claims"])
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["claims.png", "fig-pairs.png"]
    refused = {"fig-pair": ("no figure ['fig-pair'] in report.yaml", "fig-pairs, claims")}
    refused |= {"chian": ("profile 'chian' unknown; allowed: ", "chain-p5k-w8-m9")}
    for bad, (why, known) in refused.items():
        with pytest.raises(SystemExit):
            main([*args, "--only" if bad.startswith("fig") else "--profile", bad])
        err = capsys.readouterr().err
        assert why in err and known in err, err
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["claims.png", "fig-pairs.png"]
