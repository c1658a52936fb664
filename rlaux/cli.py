"""`rlaux train | evaluate`: flags are generated from the typed config, so the CLI,
YAML files and params.yaml cannot drift apart."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rlaux.config import ConfigError, TrainConfig, build_config, load_yaml
from rlaux.data import DatasetNotFoundError


def _add_config_flags(parser: argparse.ArgumentParser, model: type[BaseModel], prefix: str = "") -> None:
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            _add_config_flags(parser, ann, f"{prefix}{name}.")
            continue
        flag = f"--{prefix}{name}".replace("_", "-")
        default = "" if field.default_factory else f" (default: {field.default})"
        is_bool = ann is bool
        parser.add_argument(
            flag, dest=f"cfg:{prefix}{name}", metavar="" if is_bool else "VALUE",
            nargs="?" if is_bool else None, const="true" if is_bool else None,
            help=(field.description or "") + default,
        )


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
        node[leaf] = raw if isinstance(value, (dict, list)) or value is None and raw not in ("null", "none", "None") else value
    return out


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    layers = [load_yaml(args.config)] if args.config else []
    return build_config(*layers, _overrides(args))


def _train(args: argparse.Namespace) -> None:
    from rlaux.training import train

    cfg = config_from_args(args)
    metrics = train(cfg, resume=args.resume)
    print(json.dumps(metrics, indent=2))


def _evaluate(args: argparse.Namespace) -> None:
    from rlaux.evaluation import reevaluate

    print(json.dumps(reevaluate(Path(args.run_dir), args.data_root), indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlaux", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one run into --out", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tr.add_argument("--config", type=Path, help="YAML file with config keys (flags override it)")
    tr.add_argument("--resume", action="store_true", help="continue from --out's last checkpoint")
    _add_config_flags(tr, TrainConfig)
    tr.set_defaults(func=_train)
    ev = sub.add_parser("evaluate", help="re-evaluate a run's best-validation checkpoint and rewrite its metrics.json")
    ev.add_argument("run_dir")
    ev.add_argument("--data-root", type=Path, default=None, help="override the data root stored in the run's config")
    ev.set_defaults(func=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, DatasetNotFoundError) as err:
        print(f"rlaux: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
