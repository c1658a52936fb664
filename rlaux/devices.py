"""Paths that survive DVC's queue: a relative path (./data) names the workspace's, also from a queued copy."""

from __future__ import annotations

from pathlib import Path


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
