"""Each custom kernel of the repository paired with the native op it replaces, inputs bound.

m3.native_comparison builds one table of custom kernels against native PyTorch ops; this module
gives, per op family, a :class:`Work`: the custom and native calls as closures over inputs drawn
on the target device (a GPU row draws its inputs there: no host work, no copy), the call that
equality compares against, and the work done (bytes for memory-bound ops: inputs read once,
outputs written once, plus the saved mean/rstd for LayerNorm; FLOPs for the matmul).

The fused LayerNorm+Dropout kernels draw the Philox mask of ``kernels/rng/philox.py``, which
torch's dropout does not, so equality compares them with ``F.layer_norm`` followed by that mask;
the timed native op is the real ``F.layer_norm + F.dropout``.

:func:`exported_ops` lists the op families a kernel package exports, so a table can prove it
covers every custom kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from harness.checks import Tolerance
from kernels.rng import philox

P_DROP = 0.1
SEED = 1234


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One row of the table: a custom kernel and its native op."""

    name: str
    """row name"""
    backend: str
    """kernels.cpp, kernels.triton or kernels.cuda"""
    op: str
    """op family: layer_norm_dropout, sum, matmul, softmax"""
    device: str
    """device type it runs on"""
    native: str
    """the native op it is timed against"""
    requires: tuple[str, ...]
    """capabilities needed to run it natively (to time it)"""
    interpretable: bool = False
    """runs in the Triton interpreter on CPU (checked there when cuda is absent)"""


#: op families and the substrings that mark them in a kernel package's __all__
OP_FAMILIES = {
    "layer_norm_dropout": ("layer_norm_dropout", "layernorm_dropout"),
    "sum": ("sum",),
    "matmul": ("matmul",),
    "softmax": ("softmax",),
}
_HELPER_SUFFIXES = ("_flops", "_bytes", "_reference", "_bwd", "_backward", "CONFIGS", "Config")


def exported_ops(backend: str) -> set[str]:
    """Op families among the public callables of a kernel package (what the table must cover)."""
    import importlib

    mod = importlib.import_module(backend)
    found = set()
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name, None)
        if not callable(obj) or isinstance(obj, type) or name.endswith(_HELPER_SUFFIXES):
            continue
        for fam, marks in OP_FAMILIES.items():
            if any(m in name for m in marks):
                found.add(fam)
                break
    return found


# -- the work of each row ----------------------------------------------------------------------


@dataclasses.dataclass
class Work:
    """Inputs bound into closures: custom and native calls, what equality compares, the work."""

    custom: Callable[[], torch.Tensor]
    native: Callable[[], torch.Tensor]
    native_for_equality: Callable[[], torch.Tensor]
    shape: str
    dtype: torch.dtype
    bytes: float | None = None
    flops: float | None = None
    tol: Tolerance | None = None


def _gen(seed: int, device) -> torch.Generator:
    """A generator on ``device``: GPU rows draw their inputs there (no host work, no copy)."""
    return torch.Generator(device).manual_seed(seed)


def _ln_work(k: Any, s: Any, device, dtype, seed: int) -> Work:
    from kernels.cpp.common import layer_norm_dropout_bytes

    m, n = s.ln
    g = _gen(seed, device)
    x = (torch.randn(m, n, generator=g, device=device) * 2 + 0.5).to(dtype)
    w = (1 + 0.1 * torch.randn(n, generator=g, device=device)).to(dtype)
    b = (0.1 * torch.randn(n, generator=g, device=device)).to(dtype)
    keep = philox.dropout_mask(SEED, x.numel(), P_DROP, device=x.device).view(x.shape)
    if k.backend == "kernels.cpp":
        from kernels import cpp

        cpp.load()
        custom = lambda: cpp.layer_norm_dropout_forward(x, w, b, p=P_DROP, seed=SEED)[0]  # noqa: E731
    elif k.backend == "kernels.triton":
        from kernels.triton import layernorm_dropout_fwd

        custom = lambda: layernorm_dropout_fwd(x, w, b, P_DROP, SEED)[0]  # noqa: E731
    else:
        from kernels import cuda

        cuda.load()
        custom = lambda: cuda.layer_norm_dropout_forward(x, w, b, p=P_DROP, seed=SEED)[0]  # noqa: E731
    return Work(
        custom=custom,
        native=lambda: F.dropout(F.layer_norm(x, (n,), w, b), P_DROP, training=True),
        native_for_equality=lambda: torch.where(keep, F.layer_norm(x, (n,), w, b) / (1 - P_DROP), 0.0),
        shape=f"{m}x{n}",
        dtype=dtype,
        bytes=layer_norm_dropout_bytes(m, n, x.element_size(), stat_itemsize=4),
    )


def _sum_work(k: Any, s: Any, device, dtype, seed: int) -> Work:
    x = torch.randn(s.sum_n, generator=_gen(seed, device), device=device).to(dtype)
    if k.backend == "kernels.cpp":
        from kernels import cpp

        cpp.load()
        custom = lambda: cpp.sum_all(x)  # noqa: E731
    elif k.backend == "kernels.triton":
        from kernels.triton import triton_sum

        custom = lambda: triton_sum(x)  # noqa: E731
    else:
        from kernels import cuda

        cuda.load()
        custom = lambda: cuda.sum_all(x)  # noqa: E731
    # both sums round differently: the float32 error of a sum of n normals grows like sqrt(n)
    # (m3.reduction_kernel measures it; 2e-6 sqrt(n) has ~7x headroom)
    return Work(
        custom=custom,
        native=lambda: x.sum(),
        native_for_equality=lambda: x.sum(),
        shape=str(s.sum_n),
        dtype=dtype,
        bytes=(s.sum_n + 1) * x.element_size(),
        tol=Tolerance(rtol=1.3e-6, atol=2e-6 * s.sum_n**0.5),
    )


def _matmul_work(k: Any, s: Any, device, dtype, seed: int) -> Work:
    from kernels.triton import matmul

    g = _gen(seed, device)
    a = torch.randn(s.mm, s.mm, generator=g, device=device).to(dtype)
    b = torch.randn(s.mm, s.mm, generator=g, device=device).to(dtype)
    return Work(
        custom=lambda: matmul(a, b),
        native=lambda: torch.matmul(a, b),
        native_for_equality=lambda: torch.matmul(a, b),
        shape=f"{s.mm}^3",
        dtype=dtype,
        flops=2.0 * s.mm**3,
    )


def _softmax_work(k: Any, s: Any, device, dtype, seed: int) -> Work:
    from kernels.triton import softmax_fwd

    x = torch.randn(*s.softmax, generator=_gen(seed, device), device=device).to(dtype)
    return Work(
        custom=lambda: softmax_fwd(x),
        native=lambda: torch.softmax(x, -1),
        native_for_equality=lambda: torch.softmax(x, -1),
        shape=f"{s.softmax[0]}x{s.softmax[1]}",
        dtype=dtype,
        bytes=2 * x.numel() * x.element_size(),
    )


#: op family -> builder (kernel row with ``backend``, sizes with ln/sum_n/mm/softmax, device, dtype, seed)
WORK = {"layer_norm_dropout": _ln_work, "sum": _sum_work, "matmul": _matmul_work, "softmax": _softmax_work}

#: the table's columns, in order
COLUMNS = (
    "kernel",
    "backend",
    "device",
    "native",
    "shape",
    "dtype",
    "custom_ms",
    "native_ms",
    "unit",
    "custom_rate",
    "native_rate",
    "custom_pct_peak",
    "native_pct_peak",
    "speedup_vs_native",
    "equal_to_native",
    "status",
)


def sig(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


def peak_of(device: torch.device, run_device: torch.device, run_peak: dict) -> dict:
    """The stored peaks of ``device``: the run's own, or (another device of this machine) its file, if any."""
    if device.type == run_device.type:
        return run_peak
    import json

    from harness.peak import peak_path

    path = peak_path(device)
    return json.loads(path.read_text()) if path.exists() else {}


def row_rates(w: Work, t_custom: float, t_native: float, peak: dict) -> dict[str, Any]:
    """The table's timing columns for medians ``t_custom``/``t_native`` (ms) of ``w``.

    TFLOP/s against the peak of ``w.dtype`` (no % without one) when ``w.flops`` is set, else GB/s
    against the copy bandwidth; peaks are stored in GFLOP/s and GB/s.
    """
    from harness.peak import peak_key

    if w.flops:
        unit, work, scale = "TFLOP/s", w.flops, 1e12
        ceiling = peak.get(peak_key(w.dtype) or "")
    else:
        unit, work, scale = "GB/s", w.bytes or 0.0, 1e9
        ceiling = peak.get("copy_gbps")
    rate_c, rate_n = work / (t_custom / 1e3) / scale, work / (t_native / 1e3) / scale
    ceil = ceiling * 1e9 / scale if ceiling else None
    return dict(
        custom_ms=sig(t_custom),
        native_ms=sig(t_native),
        unit=unit,
        custom_rate=sig(rate_c),
        native_rate=sig(rate_n),
        custom_pct_peak=sig(100 * rate_c / ceil) if ceil else None,
        native_pct_peak=sig(100 * rate_n / ceil) if ceil else None,
        speedup_vs_native=sig(t_native / t_custom),
    )
