"""What every generated file shares: its mode (what a plain write gives under the user's umask, not mkstemp's
private 0600) and progress output that a log can hold (bars only on a terminal)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from rlaux.io import atomic_write, is_terminal, progress_bar, umask, write_csv, write_json, write_text


@pytest.fixture
def with_umask():
    """`with_umask(mask)` sets the process's umask for the test; the old one comes back after it."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _writers(tmp_path: Path):
    """Every helper that writes an output atomically (rlaux.io and its users), with the file each writes."""
    from rlaux.checkpoint import atomic_torch_save
    from rlaux.report.figures import plt, save_figure
    from rlaux.subsets import _write_npz

    yield "write_text", lambda p: write_text(p, "x\n")
    yield "write_json", lambda p: write_json(p, {"a": 1})
    yield "write_csv", lambda p: write_csv(p, [{"a": 1}])
    yield "atomic_write", lambda p: atomic_write(p, lambda f: f.write(b"x"))
    yield "atomic_torch_save (checkpoints)", lambda p: atomic_torch_save({"w": [1, 2]}, p)
    yield "save_figure", lambda p: save_figure(plt.figure(figsize=(1, 1)), p)
    yield "subsets' npz", lambda p: _write_npz(p, {"x": np.zeros(3)})


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_mode_a_plain_write_gives_under_the_umask(tmp_path, with_umask, mask, mode):
    """mkstemp makes its file 0600 whatever the umask; renamed into place, every output was private (issue 36)."""
    with_umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(plain.stat().st_mode) == mode  # what the user's umask gives any file
    for i, (name, write) in enumerate(_writers(tmp_path)):
        path = tmp_path / "out" / f"{i}.bin"
        write(path)
        assert stat.S_IMODE(path.stat().st_mode) == mode, name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i}.bin" for i in range(7)]  # no temp left


def test_an_existing_private_output_is_replaced_with_the_umasks_mode(tmp_path, with_umask):
    with_umask(0o022)
    path = tmp_path / "report.md"
    path.write_text("old")
    path.chmod(0o600)  # written by an older version
    write_text(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_umask_is_read_without_changing_it_and_without_proc(tmp_path, with_umask):
    with_umask(0o027)
    assert umask() == 0o027
    assert umask(tmp_path / "no-proc-here") == 0o027  # the fallback: set and restored
    assert umask() == 0o027
    garbled = tmp_path / "status"
    garbled.write_text("Name:\tpython\nUmask:\tnot-octal\n")
    assert umask(garbled) == 0o027


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _drive(stream) -> str:
    """Nested bars as the loop draws them (epochs, then batches inside each), with a postfix per epoch."""
    epochs = progress_bar(range(3), stream=stream, desc="rl/cifar10", total=3)
    for _ in epochs:
        for _ in progress_bar(range(50), stream=stream, total=50, leave=False):
            pass
        epochs.set_postfix_str("loss 1.000, val 0.300, test 0.300")
    epochs.close()
    return stream.getvalue()


def test_progress_bars_draw_only_on_a_terminal():
    """A pipe or a log gets no carriage-return redraws or escape codes; a terminal still gets its bars."""
    piped = _drive(io.StringIO())
    assert "\r" not in piped and "\x1b[" not in piped
    assert "\r" in _drive(_Terminal())  # the check above can fail: a terminal's bars redraw with \r
    off = _Terminal()
    assert list(progress_bar(range(5), stream=off, enabled=False)) == list(range(5))
    assert off.getvalue() == ""  # `progress: false`: nothing, even on a terminal


def test_is_terminal_of_a_pipe_a_closed_or_an_odd_stream_is_false():
    closed = io.StringIO()
    closed.close()
    assert is_terminal(_Terminal()) and not is_terminal(io.StringIO())
    assert not is_terminal(closed) and not is_terminal(object())
