"""Files, paths and the terminal: atomic writes (a temporary sibling renamed into place, so a killed process never
leaves a half-written output, with the mode a plain `open(path, "w")` would give), workspace paths that survive
DVC's queue, and progress bars only where a terminal shows them. Free of torch, so cheap commands stay cheap."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def umask(status: Path = Path("/proc/self/status")) -> int:
    """The process's umask, read without changing it from `status`'s `Umask:` line (Linux 4.7+); elsewhere set and
    restored at once (`os.umask` can only be read by setting it: a race with threads creating files meanwhile)."""
    try:
        for line in Path(status).read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Write `path` through `write(binary file)` into a temporary sibling renamed into place. mkstemp creates the
    sibling 0600 whatever the umask; it is given the mode `open(path, "w")` would create a file with (0666 less
    the umask: 0644 under umask 022), so outputs are as readable as any other file the user writes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o666 & ~umask())
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


def is_terminal(stream: Any) -> bool:
    """Whether `stream` is a terminal (a pipe, a file or a closed stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def progress_bar(iterable: Any = None, *, enabled: bool = True, stream: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar on `stream` (default: stderr) when it is a terminal; on a pipe or a file (a log) none, since its
    carriage-return redraws and escape codes would fill the log: the caller prints plain lines there instead.
    `enabled=False` (the `progress: false` setting) shows none anywhere. A hidden bar still iterates, and its
    `set_postfix` and `update` do nothing."""
    from tqdm.auto import tqdm

    stream = sys.stderr if stream is None else stream
    return tqdm(iterable, file=stream, disable=not (enabled and is_terminal(stream)), **kwargs)
