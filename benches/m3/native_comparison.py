"""m3 Benchmark custom kernels against PyTorch native: one table.

Compared: every custom kernel of this repository against the native op it replaces, on
each device present, timed directly here (not re-read from other tasks' records) so the
table is one consistent run:

==========================  ==================  =========================================
custom kernel               device              native op
==========================  ==================  =========================================
C++ ext LayerNorm+Dropout   cpu                 F.layer_norm + F.dropout
C++ ext sum                 cpu                 torch.sum
Triton matmul               cuda                torch.matmul (cuBLAS)
Triton LayerNorm+Dropout    cuda                F.layer_norm + F.dropout
Triton sum                  cuda                torch.sum
Triton softmax              cuda                torch.softmax
CUDA LayerNorm+Dropout      cuda                F.layer_norm + F.dropout
CUDA sum                    cuda                torch.sum
==========================  ==================  =========================================

Each row: shape and dtype, both times (median ms), the rate of each (GB/s for the
memory-bound ops with the minimum bytes of the op: inputs read once, outputs written
once, plus the saved mean/rstd for LayerNorm; TFLOP/s for the matmul, 2 M N K), % of
this device's measured peak (copy bandwidth, or matmul rate in the same dtype), the
speedup over native, and whether the custom output equalled the native op's on the
table's own inputs. A kernel whose device or toolchain is absent is listed with the
reason ("needs cuda"); on CPU the Triton kernels are still checked in the interpreter.

Equality: the fused LayerNorm+Dropout kernels draw the Philox mask of kernels/rng/philox.py,
which torch's dropout does not, so they are compared with ``F.layer_norm`` followed by
that mask (the native op with the same mask); the timed native op is the real
``F.layer_norm + F.dropout``.

Check (tiny sizes): the table covers every (backend, op) the kernel packages export
(kernels.cpp, kernels.triton, kernels.cuda: layer-norm+dropout, sum, matmul, softmax)
and every row is either measured or names the missing capability; every custom kernel
that can run here (CPU extension natively, Triton in the interpreter) equals its native
op. Bench: the table at cpu/gpu size (on GPU: matmul 4096^3 and LayerNorm/softmax in
bfloat16, sums in float32), plus ``<kernel>_speedup`` and ``<kernel>_pct_peak`` metrics.

Figures. This CPU (float32, one thread, 2026-11-29, shared cores): C++ ext
LayerNorm+Dropout 4096 x 1024 50 ms vs F.layer_norm + F.dropout 106 ms (2.1x; 0.67 GB/s,
2.1% of copy bandwidth: Philox-bound, see m3.fused_ln_dropout); C++ ext sum of 2**24
float32 11.1 ms vs torch.sum 15.5 ms (1.4x; 6.0 GB/s, 19%). The Triton and CUDA rows read
"needs cuda"; the check ran the four Triton kernels in the interpreter and found them equal
to native. H200: not measured yet (targets: Triton matmul >= 85% of cuBLAS, fused kernels
>= 80% of measured copy bandwidth).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from harness import Comparison, Tolerance, capabilities, task
from harness.checks import tolerance_for
from harness.gpu_check import worst_elements
from harness.peak import peak_key
from harness.timing import measure
from kernels.rng import philox


@dataclasses.dataclass(frozen=True)
class TableSizes:
    """Input sizes of every row (one preset per mode)."""

    ln: tuple[int, int]
    """(M, N) of LayerNorm+Dropout"""
    sum_n: int
    """elements of the whole-tensor sums"""
    mm: int
    """M = N = K of the matmul"""
    softmax: tuple[int, int]
    """(M, N) of the row softmax"""
    low_precision: bool = False
    """CUDA rows of matmul, LayerNorm and softmax in bfloat16 (sums stay float32)"""
    min_run_time_s: float = 0.3
    """timing per measurement, seconds"""
    cpu_rows: str | None = None
    """size preset whose sizes the CPU rows use instead (a GPU preset's inputs are too big for a CPU)"""

    def label(self) -> str:
        return f"ln={self.ln[0]}x{self.ln[1]},sum={self.sum_n},mm={self.mm},softmax={self.softmax[0]}x{self.softmax[1]}"


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


KERNELS: tuple[Kernel, ...] = (
    Kernel(
        "C++ ext LayerNorm+Dropout",
        "kernels.cpp",
        "layer_norm_dropout",
        "cpu",
        "F.layer_norm + F.dropout",
        ("cpp_ext",),
    ),
    Kernel("C++ ext sum", "kernels.cpp", "sum", "cpu", "torch.sum", ("cpp_ext",)),
    Kernel("Triton matmul", "kernels.triton", "matmul", "cuda", "torch.matmul (cuBLAS)", ("cuda", "triton"), True),
    Kernel(
        "Triton LayerNorm+Dropout",
        "kernels.triton",
        "layer_norm_dropout",
        "cuda",
        "F.layer_norm + F.dropout",
        ("cuda", "triton"),
        True,
    ),
    Kernel("Triton sum", "kernels.triton", "sum", "cuda", "torch.sum", ("cuda", "triton"), True),
    Kernel("Triton softmax", "kernels.triton", "softmax", "cuda", "torch.softmax", ("cuda", "triton"), True),
    Kernel(
        "CUDA LayerNorm+Dropout",
        "kernels.cuda",
        "layer_norm_dropout",
        "cuda",
        "F.layer_norm + F.dropout",
        ("cuda", "nvcc"),
    ),
    Kernel("CUDA sum", "kernels.cuda", "sum", "cuda", "torch.sum", ("cuda", "nvcc")),
)

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


def _ln_work(k: Kernel, s: TableSizes, device, dtype, seed: int) -> Work:
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


def _sum_work(k: Kernel, s: TableSizes, device, dtype, seed: int) -> Work:
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


def _matmul_work(k: Kernel, s: TableSizes, device, dtype, seed: int) -> Work:
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


def _softmax_work(k: Kernel, s: TableSizes, device, dtype, seed: int) -> Work:
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


_WORK = {"layer_norm_dropout": _ln_work, "sum": _sum_work, "matmul": _matmul_work, "softmax": _softmax_work}

_COLUMNS = (
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


def _sig(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


@task("m3.native_comparison", seed="m3", title="benchmark custom kernels against PyTorch native")
class NativeComparison(Comparison):
    __doc__ = __doc__
    variants = ("table",)
    gpu_check = True
    sizes = {
        "tiny": TableSizes(ln=(7, 33), sum_n=1003, mm=33, softmax=(5, 37), min_run_time_s=0.02),
        "cpu": TableSizes(ln=(4096, 1024), sum_n=2**24, mm=1024, softmax=(4096, 1024)),
        "gpu": TableSizes(
            ln=(16384, 4096), sum_n=2**28, mm=4096, softmax=(16384, 4096), low_precision=True, cpu_rows="cpu"
        ),
    }

    def kernels(self) -> tuple[Kernel, ...]:
        return KERNELS

    def work(self, k: Kernel, s: TableSizes, device, dtype, seed: int) -> Work:
        return _WORK[k.op](k, s, device, dtype, seed)

    def _dtype(self, k: Kernel, s: TableSizes) -> torch.dtype:
        return torch.bfloat16 if (s.low_precision and k.device == "cuda" and k.op != "sum") else torch.float32

    def build_rows(self, ctx, s: TableSizes, *, time_it: bool, seed: int | None = None) -> list[dict[str, Any]]:
        """One row per kernel; runs (and times) what can run here, checks every output against native."""
        rows = []
        for k in self.kernels():
            row = dict.fromkeys(_COLUMNS)
            row.update(kernel=k.name, backend=k.backend, device=k.device, native=k.native)
            miss = capabilities.missing(list(k.requires))
            if k.device == "cuda" and not ctx.has("cuda"):
                miss = sorted(set(miss) | {"cuda"})
            interp = bool(miss) and k.interpretable and ctx.has("triton") and not ctx.has("cuda") and not time_it
            if miss and not interp:
                row["status"] = capabilities.skip_reason(miss)
                rows.append(row)
                continue
            why = self.not_runnable(ctx, k)
            if why:
                row["status"] = f"skipped: {why}"
                rows.append(row)
                continue
            # a CUDA row runs on the run's GPU, or on cuda:0 when the run itself is on the CPU
            device = (
                torch.device("cpu")
                if (interp or k.device == "cpu")
                else (ctx.device if ctx.is_cuda else torch.device("cuda"))
            )
            sz = self.sizes[s.cpu_rows] if (k.device == "cpu" and s.cpu_rows) else s
            dtype = self._dtype(k, sz)
            w = self.work(k, sz, device, dtype, ctx.rng_seed if seed is None else seed)
            row.update(shape=w.shape, dtype=str(dtype).removeprefix("torch."))
            out, ref = w.custom(), w.native_for_equality()
            tol = w.tol or tolerance_for(dtype)
            c = ctx.assert_close(
                *worst_elements(out, ref, rtol=tol.rtol, atol=tol.atol),  # large outputs compared on the device
                name=f"{k.name} == native",
                where=f"{w.shape} {row['dtype']} on {device.type}",
                rtol=tol.rtol,
                atol=tol.atol,
            )
            row["equal_to_native"] = f"yes (max abs err {c.max_abs_err:.2g})"
            if interp:
                row["status"] = "checked in the Triton interpreter; timing " + capabilities.skip_reason(["cuda"])
                rows.append(row)
                continue
            if time_it:
                self._time_row(ctx, row, w, device, sz, k)
            row["status"] = "measured" if time_it else "checked"
            rows.append(row)
        return rows

    def not_runnable(self, ctx, k: Kernel) -> str | None:
        """Why row ``k`` is skipped although its capabilities are present, else None: a CPU row
        in a CUDA run (it would build the CPU extension on a lent GPU's time), or an extension
        that failed to build (the other rows still run)."""
        if k.device == "cpu" and ctx.is_cuda:
            return "a CPU row in a CUDA run (run it with --device cpu)"
        if k.backend in ("kernels.cpp", "kernels.cuda"):
            import importlib

            reason = importlib.import_module(k.backend).build_error()
            return f"extension not built: {reason}" if reason else None
        return None

    def _time_row(self, ctx, row: dict, w: Work, device: torch.device, s: TableSizes, k: Kernel) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t_custom = measure(w.custom, device, min_run_time_s=s.min_run_time_s).median_ms
            t_native = measure(w.native, device, min_run_time_s=s.min_run_time_s).median_ms
        for msg in dict.fromkeys(str(c.message) for c in caught):
            ctx.record.warnings.append(f"{k.name} [{w.shape}]: {msg}")
        peak = self._peak(ctx, device)
        if w.flops:
            unit, work, scale = "TFLOP/s", w.flops, 1e12
            ceiling = peak.get(peak_key(w.dtype) or "")  # the peak of this dtype, or no % at all
        else:
            unit, work, scale = "GB/s", w.bytes, 1e9
            ceiling = peak.get("copy_gbps")
        rate_c, rate_n = work / (t_custom / 1e3) / scale, work / (t_native / 1e3) / scale
        ceil = None if not ceiling else ceiling * 1e9 / scale  # peaks are stored in GFLOP/s and GB/s
        row.update(
            custom_ms=_sig(t_custom),
            native_ms=_sig(t_native),
            unit=unit,
            custom_rate=_sig(rate_c),
            native_rate=_sig(rate_n),
            custom_pct_peak=_sig(100 * rate_c / ceil) if ceil else None,
            native_pct_peak=_sig(100 * rate_n / ceil) if ceil else None,
            speedup_vs_native=_sig(t_native / t_custom),
        )
        slug = re.sub(r"[^a-z0-9]+", "_", k.name.lower()).strip("_")  # "C++ ext sum" -> "c_ext_sum"
        ctx.metric(f"{slug}_speedup", t_native / t_custom)
        if ceil:
            ctx.metric(f"{slug}_pct_peak", 100 * rate_c / ceil)

    def _peak(self, ctx, device: torch.device) -> dict:
        if device.type == ctx.device.type:
            return ctx.peak
        import json

        from harness.peak import peak_path  # another device of this machine: its stored peak, if any

        path = peak_path(device)
        return json.loads(path.read_text()) if path.exists() else {}

    def check(self, ctx) -> None:
        for trial in (1, 2):  # the table's own seed last: its rows are the ones judged below
            self.build_rows(ctx, ctx.configs[0], time_it=False, seed=ctx.rng_seed + trial)
        rows = self.build_rows(ctx, ctx.configs[0], time_it=False)
        names = [r["kernel"] for r in rows]
        ctx.expect(len(names) == len(set(names)), f"duplicate rows in the table: {names}", name="one row per kernel")
        covered = {(k.backend, k.op) for k in self.kernels() if k.name in names}
        for backend in ("kernels.cpp", "kernels.triton", "kernels.cuda"):
            if backend == "kernels.triton" and not ctx.has("triton"):
                ctx.skip_part("coverage of kernels.triton", capabilities.skip_reason(["triton"]))
                continue
            for op in sorted(exported_ops(backend)):
                ctx.expect(
                    (backend, op) in covered,
                    f"{backend} exports a {op} kernel that the table lacks",
                    name="the table covers every custom kernel",
                )
        for r in rows:
            ok = r["equal_to_native"] is not None or (r["status"] or "").startswith(("needs ", "skipped: "))
            ctx.expect(
                ok,
                f"row {r['kernel']!r} is neither checked nor skipped with a reason: {r['status']}",
                name="every row checked or skipped with a reason",
            )

    def bench(self, ctx) -> None:
        s = ctx.configs[0]
        rows = self.build_rows(ctx, s, time_it=True)
        ctx.table(f"custom kernels vs native ({ctx.device.type} run, {ctx.size} size)", rows)
        for r in rows:
            if r["status"] != "measured":
                ctx.skip_part(f"{r['kernel']} ({r['device']})", r["status"])
