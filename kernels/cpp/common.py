"""Pieces shared by the CPU extension (kernels.cpp) and the CUDA extension (kernels.cuda).

Both compiled modules expose the same functions with the same signatures::

    layer_norm_dropout_forward(x, weight, bias, p, seed, eps) -> (out, mean, rstd)
    layer_norm_dropout_backward(grad_out, x, weight, mean, rstd, p, seed,
                                need_weight_grad, need_bias_grad) -> (dx, dweight|None, dbias|None)
    sum_all(x) -> 0-dim tensor
    sum_lastdim(x) -> tensor of shape x.shape[:-1]
    philox_uniform(offsets, seed) -> float32 tensor like offsets

so the input checks, the autograd Function and the bytes-moved formulas live here once.

Dropout mask convention (both extensions, kernels/rng/philox.py and Triton tutorial 04): element
with row-major index ``k`` of ``x`` is kept iff ``tl.rand(seed, k) > p`` (Philox 4x32-10, see
kernels/cuda/philox.cuh); kept values are scaled by ``1 / (1 - p)``. ``p == 0`` keeps every
element without drawing, ``p == 1`` drops all (output zeros).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import socket
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

try:
    import fcntl
except ImportError:  # not on Windows: builds are then serialised by torch's lock alone
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "build_root",
    "build_once",
    "load_error",
    "ExtensionBuildError",
    "host_tag",
    "check_layer_norm_inputs",
    "check_sum_input",
    "LayerNormDropoutFunction",
    "layer_norm_dropout_bytes",
    "sum_bytes",
]

_SEED_MAX = 2**63 - 1


def build_root() -> Path:
    """Folder under which compiled extensions are cached, outside the repository.

    ``$TORCH_EXTENSIONS_DIR`` when set (the variable torch.utils.cpp_extension itself honours),
    else ``~/.cache/torchdrills/ext``, then one sub-folder per environment (a hash of the
    Python prefix, the torch version and this checkout's path): two checkouts or venvs on one
    machine never share, and so never rebuild over each other or wait on each other's lock.
    Created if missing.
    """
    env = os.environ.get("TORCH_EXTENSIONS_DIR")
    root = Path(env) if env else Path.home() / ".cache" / "torchdrills" / "ext"
    key = f"{sys.prefix}|{torch.__version__}|{Path(__file__).resolve().parent.parent}"
    root = root / hashlib.sha256(key.encode()).hexdigest()[:10]
    root.mkdir(parents=True, exist_ok=True)
    return root


#: A build lock *without owner information* (not made through :func:`build_once`) older than
#: this is taken as left over; a lock with an owner is judged by the owner's liveness at once.
STALE_LOCK_S = 10 * 60
#: Beside torch's ``lock``: who builds now (JSON ``pid``, ``host``, ``started``); also the file
#: :func:`build_lock` holds an exclusive ``flock`` on while it builds.
OWNER_FILE = "lock.owner"


def _pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _owner(d: Path) -> dict | None:
    try:
        data = json.loads((d / OWNER_FILE).read_text() or "null")
        return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def clear_stale_lock(d: Path) -> bool:
    """Remove torch's build ``lock`` in ``d`` when its builder is gone; True if removed.

    torch.utils.cpp_extension serialises builds with an empty ``lock`` file and waits for it
    forever; a build killed mid-way (a time limit, Ctrl-C, a lost machine) leaves it behind.
    Builds made through :func:`build_once` write their pid and host into :data:`OWNER_FILE`:
    a lock whose owner process on this host has died is removed at once, one whose owner lives
    is kept (that build is running). A lock with no owner information, or one from another host,
    is removed only when older than :data:`STALE_LOCK_S`. Each removal warns.
    """
    lock = d / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    owner = _owner(d)
    if owner is not None and owner.get("host") == socket.gethostname():
        if _pid_alive(owner["pid"]):
            return False
        why = f"its builder, pid {owner['pid']} on this host, has exited"
    elif age > STALE_LOCK_S:
        why = f"{age / 60:.0f} min old, builder unknown"
    else:
        return False
    warnings.warn(f"removing stale extension build lock {lock} ({why})", stacklevel=2)
    lock.unlink(missing_ok=True)
    return True


def build_dir(name: str) -> Path:
    """``build_root() / name``, created, with a stale build lock removed (:func:`clear_stale_lock`)."""
    d = build_root() / name
    d.mkdir(parents=True, exist_ok=True)
    clear_stale_lock(d)
    return d


@contextlib.contextmanager
def build_lock(d: Path):
    """Hold the build of the extension in ``d``: an exclusive ``flock`` on :data:`OWNER_FILE`,
    with this process's pid and host written into it.

    A second process of this project waits here rather than in torch's lock; the kernel drops
    the flock when its holder dies, so the next builder finds the owner dead and clears the
    ``lock`` it left (:func:`clear_stale_lock`) without waiting.
    """
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / OWNER_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        clear_stale_lock(d)  # the previous owner released the flock: finished, or died
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class ExtensionBuildError(RuntimeError):
    """A compiled extension could not be built or loaded; ``str()`` is a one-line reason."""


#: Builds that failed in this process: name -> the error, raised again without rebuilding.
_FAILED: dict[str, ExtensionBuildError] = {}


def _reason(e: BaseException) -> str:
    """One line: the exception's first line plus the first compiler ``error`` line of its log."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    err = next((ln for ln in lines[1:] if "error" in ln.lower()), "")
    return f"{type(e).__name__}: {first}" + (f" ... {err}" if err else "")


def build_once(name: str, build: Callable[[], ModuleType]) -> ModuleType:
    """``build()`` (torch's ``cpp_extension.load`` into ``build_root() / name``) under
    :func:`build_lock`; a failure is remembered for the life of the process.

    Raises:
        ExtensionBuildError: the build failed, now or earlier in this process (then at once,
            without building again: a broken build costs its 20-60 s once, not per call).
    """
    if name in _FAILED:
        raise _FAILED[name]
    try:
        with build_lock(build_root() / name):
            return build()
    except Exception as e:
        err = ExtensionBuildError(f"{name} failed to build: {_reason(e)}"[:600])
        _FAILED[name] = err
        raise err from e


def load_error(load: Callable[[], Any]) -> str | None:
    """None when ``load()`` works, else the one-line reason it did not (for ``ctx.skip_part``)."""
    try:
        load()
    except Exception as e:
        return str(e) if isinstance(e, ExtensionBuildError) else _reason(e)[:600]
    return None


def host_tag() -> str:
    """8 hex digits naming this CPU (model and feature flags).

    Part of the CPU extension's name: it is built with ``-march=native``, so a binary cached in
    a home folder shared by machines with different CPUs must not be reused (SIGILL).
    """
    text = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features")):
                    text += line
                if line.strip() == "":  # first processor's block is enough
                    break
    except OSError:
        text += platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _check_tensor(t: object, name: str, device_type: str, dtypes: tuple[torch.dtype, ...]) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != device_type:
        other = "kernels.cuda" if device_type == "cpu" else "kernels.cpp"
        raise ValueError(
            f"{name} is on {t.device}, this extension takes {device_type} tensors; "
            f"move it with .to('{device_type}') or use {other}"
        )
    if t.dtype not in dtypes:
        names = ", ".join(str(d).removeprefix("torch.") for d in dtypes)
        raise TypeError(f"{name} has dtype {t.dtype}; supported: {names}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (row-major); call .contiguous() first")


def check_layer_norm_inputs(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    p: float,
    seed: int,
    eps: float,
    *,
    device_type: str,
    dtypes: tuple[torch.dtype, ...],
) -> None:
    """Validate the arguments of a fused LayerNorm + Dropout call.

    Raises:
        TypeError: a non-tensor, an unsupported dtype, weight/bias dtype != x dtype, a non-int
            seed.
        ValueError: wrong device, non-contiguous, ``x.dim() == 0`` or ``x.shape[-1] == 0``,
            weight/bias shape other than ``(x.shape[-1],)``, p outside [0, 1], seed outside
            [0, 2**63), eps < 0, device of weight/bias differs from x.
    """
    _check_tensor(x, "x", device_type, dtypes)
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have at least 1 dim and a non-empty last dim, got {tuple(x.shape)}")
    n = x.shape[-1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        _check_tensor(t, name, device_type, dtypes)
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")
        if tuple(t.shape) != (n,):
            raise ValueError(f"{name} must have shape ({n},) = x.shape[-1:], got {tuple(t.shape)}")
        if t.dtype != x.dtype:
            raise TypeError(f"{name} has dtype {t.dtype} but x has {x.dtype}; cast one of them")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be a Python int, got {type(seed).__name__}")
    if not 0 <= seed <= _SEED_MAX:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    if not float(eps) >= 0.0:
        raise ValueError(f"eps must be >= 0, got {eps}")


def check_sum_input(x: torch.Tensor, *, device_type: str, dtypes: tuple[torch.dtype, ...], lastdim: bool) -> None:
    """Validate the input of sum_all / sum_lastdim.

    Raises:
        TypeError: non-tensor or unsupported dtype.
        ValueError: wrong device, non-contiguous, or a 0-dim tensor for the last-dim sum.
    """
    _check_tensor(x, "x", device_type, dtypes)
    if lastdim and x.dim() == 0:
        raise ValueError("sum_lastdim needs a tensor with at least 1 dim, got a 0-dim tensor")


class LayerNormDropoutFunction(torch.autograd.Function):
    """Autograd wrapper of a compiled fused LayerNorm + Dropout (either extension).

    ``apply(x, weight, bias, p, seed, eps, ext)`` where ``ext`` is the compiled module. The
    forward saves ``x, weight, mean, rstd`` (not the mask: the backward regenerates it from
    ``seed``), so saved memory is ``M * N`` elements plus two floats per row. First derivatives
    only (``once_differentiable``): double backward raises.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, p, seed, eps, ext):  # noqa: D102 (documented above)
        out, mean, rstd = ext.layer_norm_dropout_forward(x, weight, bias, float(p), int(seed), float(eps))
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.p, ctx.seed, ctx.ext, ctx.has_bias = float(p), int(seed), ext, bias is not None
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        x, weight, mean, rstd = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx, gw, gb = ctx.ext.layer_norm_dropout_backward(
            grad_out.contiguous(),
            x,
            weight,
            mean,
            rstd,
            ctx.p,
            ctx.seed,
            bool(need_w and weight is not None),
            bool(need_b and ctx.has_bias),
        )
        return (gx if need_x else None), gw, gb, None, None, None, None


def layer_norm_dropout_bytes(
    m: int,
    n: int,
    itemsize: int,
    stat_itemsize: int,
    *,
    has_weight: bool = True,
    has_bias: bool = True,
    backward: bool = False,
) -> int:
    """Minimum bytes one call must move (for effective GB/s = bytes / seconds / 1e9).

    Forward: read x (m*n), weight and bias (n each), write out (m*n) and mean, rstd (m each,
    ``stat_itemsize`` bytes). Backward: read grad_out and x (2*m*n), weight (n), mean and rstd,
    write grad_x (m*n) and grad_weight, grad_bias (n each). The mask is regenerated, never read.
    Kernels that re-read a row (the CUDA backward reads x and grad_out once in the row kernel and
    once in the dgamma/dbeta kernel) move more than this; the figure is the ideal one.
    """
    params = n * itemsize * (int(has_weight) + int(has_bias))
    stats = 2 * m * stat_itemsize
    if not backward:
        return 2 * m * n * itemsize + params + stats
    return 3 * m * n * itemsize + n * itemsize * int(has_weight) + params + stats


def sum_bytes(numel: int, itemsize: int, out_numel: int = 1) -> int:
    """Bytes a sum moves: read every element once, write ``out_numel`` results."""
    return (numel + out_numel) * itemsize
