"""A `dvc exp run -S key=value` that the pipeline refuses leaves params.yaml as it was.

DVC (3.x, checked on 3.67) writes the `-S` overrides into params.yaml, in its own YAML style, before it runs
any stage, and when a stage fails it leaves the workspace as the failure found it: the overrides stay (it
puts the workspace back only when it fails before running, e.g. on a key params.yaml lacks). The pipeline's
first stage, `rlaux data`, refuses a bad value before it writes anything; it then calls `restore_params`,
which puts params.yaml back byte for byte when the file holds exactly what the command made of the committed
one, and leaves any edit of the user's own alone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def exp_run_overrides() -> dict[str, list[str]] | None:
    """The `-S` overrides ({params file: ["key=value", ...]}) of the workspace `dvc exp run` this process runs
    under, or None when it runs under none (`dvc repro`, a queued or --temp experiment, a plain call)."""
    if not os.environ.get("DVC_EXP_NAME"):  # set by DVC for the commands of an experiment's stages
        return None
    if any(part == "exps" for part in Path.cwd().parts) and ".dvc" in Path.cwd().parts:
        return None  # a copy under .dvc/tmp/exps: the workspace is not touched
    try:
        import psutil
        from dvc.cli import parse_args
        from dvc.utils.cli_parse import to_path_overrides
    except ImportError:  # pragma: no cover - both come with dvc
        return None
    try:
        parents = psutil.Process().parents()
    except psutil.Error:
        return None
    for proc in parents:
        try:
            argv = proc.cmdline()
        except psutil.Error:
            continue
        for i in range(1, len(argv) - 1):
            if argv[i : i + 2] == ["exp", "run"] and Path(argv[i - 1]).name in ("dvc", "dvc.exe"):
                try:
                    args = parse_args(argv[i:])
                except (SystemExit, Exception):  # argparse exits on what it cannot read
                    return None
                return to_path_overrides(args.set_param or [])
    return None


def _committed(path: Path) -> bytes | None:
    """`path` as the checked-out commit holds it, or None (not in git, or no git)."""
    try:
        res = subprocess.run(
            ["git", "show", f"HEAD:./{path.name}"], cwd=path.parent, capture_output=True, check=False, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def restore_params(params: Path) -> str | None:
    """Undo a failed `dvc exp run -S`'s edit of `params`; a line saying what was done, or None when no `-S` of a
    `dvc exp run` touched it.

    The file is put back as committed only when it is the committed file with the command's overrides
    applied (DVC's own `apply_overrides`), so a user's own edit of params.yaml is never lost.
    """
    overrides = exp_run_overrides()
    params = Path(params).absolute()
    keys = next((keys for file, keys in (overrides or {}).items() if Path(file).absolute() == params), None)
    if not keys:
        return None
    import yaml
    from dvc.utils.hydra import apply_overrides

    what = ", ".join(keys)
    committed = _committed(params)
    if committed is not None:
        with tempfile.TemporaryDirectory() as tmp:
            expected = Path(tmp) / params.name
            expected.write_bytes(committed)
            apply_overrides(expected, keys)
            if yaml.safe_load(expected.read_text()) == yaml.safe_load(params.read_text()):
                params.write_bytes(committed)
                return f"{params.name} is back as committed (dvc exp run -S {what} had rewritten it)"
    names = ", ".join(key.split("=", 1)[0] for key in keys)
    return (
        f"{params.name} still holds `dvc exp run -S {what}` beside your own edits (DVC leaves both on a failure); "
        f"set {names} back by hand"
    )
