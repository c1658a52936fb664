"""Host synchronisations, counted as a GPU would meet them, on any device (issue 19).

On a GPU, the host waits for the device whenever a value crosses to the host (`.item()`, `float()`,
`bool()`, `.cpu()`, `.numpy()`, `.tolist()`, printing), whenever an op's output size depends on its
values (`nonzero`, boolean-mask indexing, `masked_select`, `unique`, `bincount`), and on a blocking copy
from host memory (`torch.tensor(0.0, device=d)`, `host_tensor.to(d)`). On a CPU nothing waits, so
`SyncCounter` sees the operations themselves: ATen ops through a dispatch mode, and the Python-level
reads that are no-ops on a CPU (`.cpu()` of a CPU tensor dispatches nothing) through a function mode.
Every event is attributed to the first calling line outside torch, library code included.

What lives on the host on a GPU too is tracked, so reading it is free, as it is there: tensors built from
host data or by factories without a `device` (or with the string ``"cpu"``), what `.cpu()` returns,
optimisers' `step` counts (torch keeps them on the host unless `capturable`/`fused`), and what ops on
host tensors only produce. A `torch.device` object names the run's device, a string ``"cpu"`` the host:
on a CPU run this is how `x.to(self.device)` (free on a GPU when x is on the device) differs from
`x.to("cpu")` (a copy to the host).

`CudaSyncWarnings` counts what torch itself reports on CUDA (`torch.cuda.set_sync_debug_mode`).
"""

from __future__ import annotations

import sys
import warnings
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

TORCH_DIR = str(Path(torch.__file__).parent)
HERE = __file__
SITE = "site-packages/"
ROOT = str(Path(__file__).resolve().parents[1]) + "/"

# ATen ops that read device values on the host: their output (or its size) needs them
VALUE_READS = {"_local_scalar_dense": "item", "nonzero": "nonzero", "masked_select": "masked_select"}
SIZE_READS = {"unique_dim", "_unique", "_unique2", "unique_consecutive", "bincount", "equal", "repeat_interleave"}
BOOL_INDEXED = {"index", "index_put", "index_put_", "_index_put_impl_"}
# Python-level reads that dispatch nothing on a CPU tensor
TO_HOST = {"cpu", "numpy", "tolist", "__array__"}
PRINTS = {"__repr__", "__str__"}
FROM_HOST = {"tensor", "as_tensor", "asarray", "from_numpy", "new_tensor"}
FACTORIES = FROM_HOST | {"zeros", "ones", "empty", "full", "arange", "linspace", "rand", "randn", "randint", "randperm"}


def call_site(frame: FrameType | None) -> str:
    """`path:line (function)` of the first frame outside torch and this module."""
    while frame is not None and (frame.f_code.co_filename.startswith(TORCH_DIR) or frame.f_code.co_filename == HERE):
        frame = frame.f_back
    if frame is None:
        return "?"
    path = frame.f_code.co_filename
    path = path.split(SITE, 1)[1] if SITE in path else path.removeprefix(ROOT)
    return f"{path}:{frame.f_lineno} ({frame.f_code.co_name})"


class SyncCounter:
    """`with SyncCounter(run_device) as c: ...`; then `c.counts[(kind, site)]`, `c.total`, `c.report()`.

    On an accelerator every CPU tensor is a host tensor; on a CPU run host tensors are tracked (above).
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.accelerated = torch.device(device).type != "cpu"
        self.counts: Counter[tuple[str, str]] = Counter()
        self._host: dict[int, weakref.ref] = {}
        self._modes = (_Functions(self), _Dispatch(self))
        self._hook: Any = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self, counts: Counter[tuple[str, str]] | None = None) -> str:
        counts = self.counts if counts is None else counts
        return "\n".join(f"  {n:5d}  {kind:14s} {site}" for (kind, site), n in counts.most_common())

    # -------------------------------------------------------------- host tensors
    def is_host(self, t: torch.Tensor) -> bool:
        if t.device.type != "cpu" or self.accelerated:
            return t.device.type == "cpu"
        ref = self._host.get(id(t))
        return ref is not None and ref() is t

    def names_host(self, device: Any) -> bool:
        """Whether a device argument names the host: on a CPU run only the string "cpu" does (a `torch.device`
        names the run's device)."""
        if self.accelerated:
            return torch.device(device).type == "cpu"
        return isinstance(device, str) and device.split(":")[0] == "cpu"

    def mark(self, out: Any, host: bool) -> None:
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            if host:
                self._host[id(t)] = weakref.ref(t, partial(self._forget, id(t)))
            else:
                self._host.pop(id(t), None)

    def _forget(self, key: int, ref: weakref.ref) -> None:
        """A host tensor died: drop its entry, unless its id already names a newer tensor."""
        if self._host.get(key) is ref:
            del self._host[key]

    def _optimizer_steps(self, optimizer: torch.optim.Optimizer, *_: Any) -> None:
        """torch keeps an optimiser's step count on the host unless it is capturable or fused."""
        for group in optimizer.param_groups:
            if not (group.get("capturable") or group.get("fused")):
                for p in group["params"]:
                    step = optimizer.state.get(p, {}).get("step")
                    if isinstance(step, torch.Tensor):
                        self.mark(step, host=True)

    def add(self, kind: str) -> None:
        self.counts[(kind, call_site(sys._getframe(2)))] += 1

    def __enter__(self) -> SyncCounter:
        self._hook = register_optimizer_step_pre_hook(self._optimizer_steps)
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
        self._hook.remove()


class _Functions(TorchFunctionMode):
    """Python-level transfers, invisible to ATen on a CPU: reads to the host, tensors from host data."""

    def __init__(self, counter: SyncCounter) -> None:
        super().__init__()
        self.c = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name == "lift_fresh.default":  # torch.from_numpy
            self.c.mark(out, host=True)
        elif name in FACTORIES:
            self.factory(name, args, kwargs, out)
        elif name in ("to", "cuda"):
            self.move(name, args, kwargs, out)
        elif args and isinstance(args[0], torch.Tensor) and not self.c.is_host(args[0]):
            if name in TO_HOST:
                self.c.add("to-host")
            elif name in PRINTS or (name == "__format__" and args[0].dim() > 0):
                self.c.add("print")  # 0-d __format__ reads .item(), which ATen sees
            if name == "cpu":
                self.c.mark(out, host=True)
        return out

    def factory(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        device = kwargs.get("device")
        data = args[0] if args else kwargs.get("data")
        if name in FROM_HOST and isinstance(data, torch.Tensor):
            if device is not None and not self.c.names_host(device):  # as_tensor(t, device=d): t.to(d)
                self.move("to", (data, device), {}, out)
            return
        host = device is None or self.c.names_host(device)
        if name in FROM_HOST and not host:
            self.c.add("from-host")  # a blocking copy of host data to the device
        self.c.mark(out, host=host)

    def move(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        """`to`/`cuda`: host -> device is a blocking copy (unless non_blocking); device -> "cpu" a read."""
        src = args[0]
        device = kwargs.get("device", next((a for a in args[1:] if isinstance(a, str | torch.device)), None))
        if name == "cuda":
            device = torch.device("cuda")
        if device is None:
            return  # dtype only: stays where it is
        if self.c.names_host(device):
            if not self.c.is_host(src):
                self.c.add("to-host")
            self.c.mark(out, host=True)
        elif self.c.is_host(src):
            if not kwargs.get("non_blocking", False):
                self.c.add("from-host")
            self.c.mark(out, host=False)


class _Dispatch(TorchDispatchMode):
    """ATen ops that read device values on the host, and host-ness carried through ops."""

    def __init__(self, counter: SyncCounter) -> None:
        super().__init__()
        self.c = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        host = bool(tensors) and all(self.c.is_host(t) for t in tensors)
        if not host and tensors:
            name = func.overloadpacket.__name__
            if name in VALUE_READS:
                self.c.add(VALUE_READS[name])
            elif name in SIZE_READS and not (name == "repeat_interleave" and kwargs.get("output_size")):
                self.c.add(name)
            elif name in BOOL_INDEXED and any(t.dtype in (torch.bool, torch.uint8) for t in tensors[1:]):
                self.c.add("bool-index")
            elif name in BOOL_INDEXED and any(t.dim() > 0 and self.c.is_host(t) for t in tensors[1:]):
                self.c.add("from-host")  # host indices into a device tensor: copied over first
            elif name == "copy_" and self.c.is_host(tensors[0]) != self.c.is_host(tensors[1]):  # dst[...] = src
                if self.c.is_host(tensors[0]):
                    self.c.add("to-host")
                elif not kwargs.get("non_blocking", False):
                    self.c.add("from-host")
        if host:
            self.c.mark(out, host=True)
        return out


class CudaSyncWarnings:
    """What torch reports on CUDA: `set_sync_debug_mode("warn")` warns at each synchronising call;
    `counts` holds them by calling line. A no-op off CUDA."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = torch.cuda.is_available() if enabled is None else enabled
        self.counts: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __enter__(self) -> CudaSyncWarnings:
        if self.enabled:
            self._catch = warnings.catch_warnings(record=True)
            self._caught = self._catch.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if not self.enabled:
            return
        torch.cuda.set_sync_debug_mode("default")
        self._catch.__exit__(kind, value, tb)
        for w in self._caught:
            if "synchroniz" in str(w.message):
                self.counts[f"{w.filename}:{w.lineno}"] += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class EpochSyncs:
    """A run's host syncs per epoch, for timing.json: torch's own count on CUDA (cheap: torch warns at each
    sync, nothing runs between them), nothing elsewhere. `with syncs.epoch(): ...` around each epoch, then
    `timing()` gives `{"syncs_per_epoch": mean}` over the steady epochs (the first is warm-up), or `{}`."""

    def __init__(self, device: torch.device) -> None:
        self.enabled = device.type == "cuda"
        self.per_epoch: list[int] = []

    @contextmanager
    def epoch(self) -> Iterator[None]:
        with CudaSyncWarnings(self.enabled) as counter:
            yield
        if self.enabled:
            self.per_epoch.append(counter.total)

    def timing(self) -> dict[str, float]:
        steady = self.per_epoch[1:] or self.per_epoch
        return {"syncs_per_epoch": sum(steady) / len(steady)} if steady else {}
