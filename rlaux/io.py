"""Files and paths: atomic writes (a temporary sibling renamed into place, so a killed process never
leaves a half-written output) and workspace paths that survive DVC's queue. Free of torch, so cheap
commands stay cheap."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(path: Path, rows: list[dict]) -> None:
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def read_table(path: Path):
    """A CSV as a DataFrame. A file without a header (an empty table, as `write_csv([])` or `DataFrame().to_csv`
    writes one) reads as an empty DataFrame, where pandas would raise."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def workspace_path(path: Path, cwd: Path | None = None) -> Path:
    """An absolute path. A relative one names a path of the workspace, also from inside one of DVC's
    queued copies (`<workspace>/.dvc/tmp/exps/<tmp>/...`), which holds no git-ignored files such as ./data."""
    path, cwd = Path(path), Path(cwd or Path.cwd()).resolve()
    if path.is_absolute():
        return path
    for copy in (cwd, *cwd.parents):
        exps = copy.parent
        if exps.name == "exps" and exps.parent.name == "tmp" and exps.parent.parent.name == ".dvc":
            return exps.parent.parent.parent / cwd.relative_to(copy) / path
    return cwd / path
