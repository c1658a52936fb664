"""`rlaux train | evaluate | experiment | dispatch | data | subsets | collect | search | dose-response | figures | tables |
answer`: `train`'s flags
are generated from the typed config, so the CLI, YAML files and params.yaml cannot drift apart."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rlaux.config import TrainConfig, build_config, load_yaml
from rlaux.errors import ConfigError, UserError, one_line
from rlaux.experiments import PARAMS, load_params
from rlaux.io import read_table

# Help groups of `rlaux train --help`: top-level keys by topic, then one group per nested section.
GROUPS: dict[str, str] = {
    "run": "what to train and how: method, optimiser, schedule, seed, device, output",
    "data": "dataset, subsets, validation split and where the files live",
    "model": "the main network and its auxiliary head",
}
FIELD_GROUPS: dict[str, str] = {
    **dict.fromkeys(
        [
            "method",
            "lam",
            "epochs",
            "batch_size",
            "lr",
            "lr_step",
            "lr_gamma",
            "focal_gamma",
            "seed",
            "device",
            "eval_batch_size",
            "progress",
            "out",
        ],
        "run",
    ),
    **dict.fromkeys(
        ["dataset", "train_size", "test_size", "val_fraction", "data_root", "download", "offline_subsets"], "data"
    ),
    **dict.fromkeys(["width", "psi"], "model"),
}
SECTION_TITLES = {"maxl": "MAXL", "rl": "RL", "errata": "errata"}
ERRATA_NOTE = (
    "The defaults follow the paper's text (docs/method.md §1-5). Each switch, off by default, reproduces one "
    "behaviour found in the authors' code (docs/method.md §6); with all of them on, RL-AUX runs as the authors' "
    "code did (the *-asrun experiments). Each applies to rl and wa-rl, except batch_mean_weights (wa-maxl only) "
    "and reset_replays_first_batch (with rl.reset batch); a switch the method never reads is refused."
)


def _help_text(field: Any) -> str:
    text = " ".join((field.description or "").split())
    default = "" if field.default_factory else f" (default: {field.default})"
    return (text + default).replace("%", "%%")


def _add_flag(group: Any, name: str, field: Any, prefix: str) -> None:
    is_bool = field.annotation is bool
    group.add_argument(
        f"--{prefix}{name}".replace("_", "-"),
        dest=f"cfg:{prefix}{name}",
        metavar="" if is_bool else "VALUE",
        nargs="?" if is_bool else None,
        const="true" if is_bool else None,
        help=_help_text(field),
    )


def _add_config_flags(parser: argparse.ArgumentParser, model: type[BaseModel] = TrainConfig) -> None:
    """One argparse group per topic (run, data, model) and per nested section (MAXL, RL, errata)."""
    groups = {name: parser.add_argument_group(name, what) for name, what in GROUPS.items()}
    sections = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sections.append((name, ann))
        else:
            _add_flag(groups[FIELD_GROUPS.get(name, "run")], name, field, "")
    for name, section in sections:
        doc = ERRATA_NOTE if name == "errata" else " ".join((section.__doc__ or "").split())
        group = parser.add_argument_group(SECTION_TITLES.get(name, name), doc.replace("%", "%%"))
        for sub, field in section.model_fields.items():
            _add_flag(group, sub, field, f"{name}.")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags that were given, as a nested dict; values parsed as YAML scalars (1e-3, true, null)."""
    out: dict[str, Any] = {}
    for dest, raw in vars(args).items():
        if not dest.startswith("cfg:") or raw is None:
            continue
        *parents, leaf = dest[4:].split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        value = yaml.safe_load(raw)
        node[leaf] = (
            raw if isinstance(value, (dict, list)) or (value is None and raw not in ("null", "none", "None")) else value
        )
    return out


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.config:
        return build_config(load_yaml(args.config), _overrides(args), sources=(str(args.config), "command line"))
    return build_config(_overrides(args), sources=("command line",))


def _train(args: argparse.Namespace) -> None:
    cfg = config_from_args(args)  # before torch loads: a bad flag is reported in about a second
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; pass one of them")
    from rlaux.training import train

    metrics = train(cfg, resume=args.resume, overwrite=args.overwrite)
    print(json.dumps(metrics, indent=2))
    print(
        f"run saved in {cfg.out} (metrics.json, history.csv, best.pt); re-evaluate: rlaux evaluate {cfg.out}",
        file=sys.stderr,
    )


def _evaluate(args: argparse.Namespace) -> None:
    from rlaux.evaluation import reevaluate

    print(json.dumps(reevaluate(Path(args.run_dir), args.data_root, args.device), indent=2))


def _experiment(args: argparse.Namespace) -> None:
    from rlaux.experiments import run_experiment

    print(json.dumps(run_experiment(args.experiment, args.params, args.plan, args.seed, args.profile), indent=2))


def _data(args: argparse.Namespace) -> None:
    from rlaux.experiments import write_plans
    from rlaux.report.collect import data_manifest

    try:  # everything checked before anything is written (DVC keeps this stage's outputs: persist)
        params = load_params(args.params)
        data_manifest(params, args.out)  # reads every dataset the profile uses: a missing one stops here
    except UserError:
        from rlaux.dvc_exp import restore_params

        if note := restore_params(args.params):  # a refused `dvc exp run -S`: params.yaml as it was
            print(f"rlaux: {note}", file=sys.stderr)
        raise
    write_plans(params, args.plan)


def _dispatch(args: argparse.Namespace) -> None:
    from rlaux.dispatch import dispatch

    only = [e.strip() for e in args.only.split(",") if e.strip()] if args.only else None
    records = dispatch(args.params, args.profile, only, args.address, args.cpus_per_run, args.runs_per_gpu, args.gpus)
    print(f"{len(records)} runs finished; `dvc repro` adopts them (each train stage keeps its finished runs)")


def _subsets(args: argparse.Namespace) -> None:
    from rlaux.subsets import build_subsets

    for path in build_subsets(args.root, download=args.download):
        print(f"wrote {path}")


def _collect(args: argparse.Namespace) -> None:
    from rlaux.report.collect import collect

    runs, _ = collect(load_params(args.params).at(args.profile), args.results)
    print(f"collected {len(runs)} runs into {args.results}")


def _search(args: argparse.Namespace) -> None:
    from rlaux.report.search import write_search

    paper = _read_csv(args.paper) if args.paper.is_file() else None
    table = write_search(load_params(args.params), args.name, args.out, paper)
    for row in table.itertuples():
        print(f"{row.stage:12} {row.profile:16} {row.status}")
    print(f"wrote {args.out / args.name}.csv and .md")


def _dose(args: argparse.Namespace) -> None:
    from rlaux.report.dose import write_dose

    table = write_dose(load_params(args.params), args.profile, args.out)
    print(f"{len(table)} oracle runs; wrote {args.out}/dose_response.csv, .md and .png")


def _report(args: argparse.Namespace) -> None:
    import pandas as pd

    params = load_params(args.params).at(args.profile)
    runs, curves, paper = (
        _read_csv(args.results / "runs.csv"),
        _read_csv(args.results / "curves.csv"),
        pd.read_csv(args.paper),
    )
    if args.command == "figures":
        from rlaux.report.figures import write_figures

        paths = write_figures(runs, curves, paper, params.profile, args.out, args.only)
        print(f"wrote {len(paths)} figure{'' if len(paths) == 1 else 's'} into {args.out}")
    else:
        from rlaux.report.answer import FollowUps
        from rlaux.report.readme import write_report
        from rlaux.report.search import Retest
        from rlaux.report.tables import write_tables

        write_tables(paper, runs, params.profile, args.out)
        search = _read_csv(args.search) if args.search.is_file() else None
        retest = Retest.read(args.search)
        follow = FollowUps.read(args.search.parent, args.dose)
        path = write_report(params, runs, paper, args.out, args.figures, curves, search, retest, follow)
        print(f"wrote {args.out}/reproduction.md, claims.csv and the report {path}")


def _answer(args: argparse.Namespace) -> None:
    from rlaux.report.answer import block, first_difference, study_answer, with_block

    generated = study_answer(args.root)
    if args.write is None and args.check is None:
        print(generated)
        return
    path = args.write or args.check
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; name the README that holds the answer's markers")
    text = path.read_text()
    if args.check is not None:
        if block(text, path) != generated:
            raise UserError(
                f"{path}'s answer differs from the tables ({first_difference(block(text, path), generated)}); "
                f"run `rlaux answer --write {path}`"
            )
        print(f"{path}'s answer is the one the tables give")
        return
    from rlaux.io import write_text

    write_text(path, with_block(text, generated, path))
    print(f"wrote the answer into {path}")


def _read_csv(path: Path):
    if not path.is_file():
        raise ConfigError(f"{path} is missing; run `rlaux collect` (the pipeline's evaluate stage) first")
    return read_table(path)


TRAIN_HELP = """Train one run into --out. Every key below is also a key of a --config YAML file and of
params.yaml (nested keys as `maxl: {order: 1}`); flags override the file. Values are read as
YAML scalars (1e-3, true, null). Everything is validated before any data is loaded or any
file is written."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlaux", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one run into --out", description=TRAIN_HELP)
    tr.add_argument("--config", type=Path, help="YAML file with config keys (flags override it)")
    tr.add_argument(
        "--resume", action="store_true", help="continue the run in --out (a finished one returns its metrics)"
    )
    tr.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run files already in --out (without it, a run there is never touched)",
    )
    _add_config_flags(tr)
    tr.set_defaults(func=_train)
    ev = sub.add_parser("evaluate", help="re-evaluate a run's best-validation checkpoint and rewrite its metrics.json")
    ev.add_argument("run_dir")
    ev.add_argument("--data-root", type=Path, default=None, help="override the data root stored in the run's config")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="override the run's device")
    ev.set_defaults(func=_evaluate)

    params_flag: dict[str, Any] = {
        "type": Path,
        "default": PARAMS,
        "help": "the experiment matrix (default: params.yaml in the current folder, the repository root)",
    }
    ex = sub.add_parser(
        "experiment", help="train an experiment of params.yaml's matrix, each seed into runs/<profile>/<id>/s<seed>"
    )
    ex.add_argument("experiment")
    ex.add_argument("--seed", type=int, default=None, help="train this seed only (default: every seed of the profile)")
    ex.add_argument("--profile", default=None, help="the profile to train (default: params.yaml's `profile`)")
    ex.add_argument("--params", **params_flag)
    ex.add_argument(
        "--plan",
        type=Path,
        default=None,
        help="the experiment's plan file (its DVC dependency); refuse to train if params.yaml no longer matches it",
    )
    ex.set_defaults(func=_experiment)
    di = sub.add_parser(
        "dispatch",
        help="train every run of a profile in parallel as Ray tasks (this machine or a cluster); dvc repro adopts them",
        description="Every (experiment, seed) of the profile as a Ray task that trains into "
        "runs/<profile>/<experiment>/s<seed> of this workspace (on a cluster: storage every node shares). "
        "A run lost with its node is retried and resumes from its checkpoint; `dvc repro` afterwards trains "
        "nothing again. Needs Ray: pip install 'rlaux[cluster]'.",
    )
    di.add_argument("--params", **params_flag)
    di.add_argument("--profile", default=None, help="the profile to run (default: params.yaml's `profile`)")
    di.add_argument("--only", default=None, help="comma-separated experiment ids (default: all the profile runs)")
    di.add_argument("--address", default=None, help="a running Ray cluster (default: $RAY_ADDRESS, else Ray here)")
    di.add_argument("--cpus-per-run", type=int, default=1, help="CPUs (and torch threads) per run (default: 1)")
    di.add_argument(
        "--runs-per-gpu",
        type=int,
        default=None,
        help="runs sharing one GPU (default: the profile's queue.runs_per_gpu)",
    )
    di.add_argument("--gpus", type=int, default=None, help="GPUs a Ray started here declares (default: detected)")
    di.set_defaults(func=_dispatch)
    da = sub.add_parser("data", help="check (and download) the active profile's datasets; write a manifest")
    da.add_argument("--params", **params_flag)
    da.add_argument("--out", type=Path, default=Path("results/data.json"))
    da.add_argument(
        "--plan",
        type=Path,
        default=Path("results/plan"),
        help="where to write each experiment's plan (its runs' resolved configs), one file per train stage",
    )
    da.set_defaults(func=_data)
    su = sub.add_parser(
        "subsets",
        help="build the offline subsets (ROOT/subsets/cifar10.npz, cifar100.npz) from the official CIFAR files",
        description="Build ROOT/subsets/cifar10.npz (class-balanced, 1,000 train and 200 test images per class, "
        "seed 0) and cifar100.npz (the first 1,117 train and 916 test images, fine and coarse labels) from the "
        "torchvision CIFAR folders under ROOT: what the tests and the smoke and study profiles read.",
    )
    su.add_argument("--root", type=Path, required=True, help="the data root: holds (or receives) cifar-10-batches-py/")
    su.add_argument("--download", action="store_true", help="download CIFAR-10 and CIFAR-100 into ROOT first")
    su.set_defaults(func=_subsets)
    co = sub.add_parser("collect", help="gather every active run's metrics and curves into results/")
    co.add_argument("--params", **params_flag)
    co.add_argument("--results", type=Path, default=Path("results"))
    co.add_argument("--profile", default=None, help="the profile to collect (default: params.yaml's `profile`)")
    co.set_defaults(func=_collect)
    se = sub.add_parser(
        "search",
        help="apply a pre-registered search of params.yaml (its cells' paired tests, the rule, the confirmation)",
    )
    se.add_argument("name", help="the search's name under params.yaml's `searches`")
    se.add_argument("--params", **params_flag)
    se.add_argument("--out", type=Path, default=Path("paper_tables/searches"))
    se.add_argument("--paper", type=Path, default=Path("paper_tables/paper.csv"), help="the paper's numbers")
    se.set_defaults(func=_search)
    do = sub.add_parser(
        "dose-response",
        help="the oracle control's dose-response: fine agreement against the oracle's share of reward variance",
    )
    do.add_argument("--profile", default="oracle", help="the profile holding the oracle runs (default: oracle)")
    do.add_argument("--params", **params_flag)
    do.add_argument("--out", type=Path, default=Path("figures/oracle"))
    do.set_defaults(func=_dose)
    for name, default_out, what in (
        ("figures", "figures", "Figures 4-12 as PNG"),
        ("tables", "paper_tables", "reproduction and claims tables and the report README.md"),
    ):
        rp = sub.add_parser(name, help=f"write {what} from results/")
        rp.add_argument("--params", **params_flag)
        rp.add_argument("--results", type=Path, default=Path("results"))
        rp.add_argument("--paper", type=Path, default=Path("paper_tables/paper.csv"))
        rp.add_argument("--out", type=Path, default=Path(default_out))
        rp.add_argument("--profile", default=None, help="the profile collected in --results (default: params.yaml's)")
        if name == "figures":
            rp.add_argument(
                "--only",
                nargs="+",
                default=None,
                metavar="FILE",
                help="draw only these: report.yaml's figures by `file` (e.g. fig-pairs), `claims` for the claims' plot",
            )
        if name == "tables":
            rp.add_argument(
                "--figures",
                type=Path,
                default=Path("figures"),
                help="where the figures stage wrote this profile's PNGs (linked from README.md)",
            )
            rp.add_argument(
                "--search",
                type=Path,
                default=Path("paper_tables/searches/positive_control.csv"),
                help="the positive-control search's table (`rlaux search`), quoted where it exists in the answer of the "
                "profile it follows up (the study's) and in no other profile's; the second search's table "
                "(positive_control_2.csv) is read from the same folder",
            )
            rp.add_argument(
                "--dose",
                type=Path,
                default=Path("figures/oracle/dose_response.csv"),
                help="the oracle's dose-response (`rlaux dose-response`): quoted in the study's answer where it exists, "
                "its figure shown in the study's report",
            )
        rp.set_defaults(func=_report)
    an = sub.add_parser(
        "answer",
        help="the README's answer, generated from the committed tables (print it, --write it, or --check it)",
        description="The answer (at most 4 sentences, 120 words) from paper_tables/study/claims.csv, "
        "paper_tables/searches/ (the registered positive-control searches and the first's re-test) and "
        "figures/oracle/dose_response.csv; the study's report opens with the same text. Without --write or "
        "--check it is printed.",
    )
    an.add_argument("--root", type=Path, default=Path("."), help="the repository holding the tables (default: .)")
    mode = an.add_mutually_exclusive_group()
    mode.add_argument(
        "--write", type=Path, default=None, metavar="README", help="replace the answer between its markers"
    )
    mode.add_argument(
        "--check",
        type=Path,
        default=None,
        metavar="README",
        help="exit 2, naming the first differing word, when the answer between its markers is not the tables'",
    )
    an.set_defaults(func=_answer)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as err:  # bad input: one line, no traceback; anything else is a bug and keeps its traceback
        print(f"rlaux: error: {one_line(str(err))}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
