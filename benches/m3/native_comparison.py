"""m3 Benchmark custom kernels against PyTorch native: one table.

Compared: every custom kernel of this repository against the native op it replaces, on each
device present, timed here so the table is one consistent run (``KERNELS`` below): on the
CPU the C++ extension's LayerNorm+Dropout and sum; on CUDA the Triton matmul (vs cuBLAS),
LayerNorm+Dropout, sum and softmax and the CUDA extension's LayerNorm+Dropout and sum.

Each row: shape and dtype, both times (median ms), the rate of each (GB/s of the minimum
bytes for the memory-bound ops, TFLOP/s for the matmul, 2 M N K), % of this device's
measured peak (copy bandwidth, or the matmul rate in the same dtype), the speedup over
native, and whether the custom output equalled the native op's on the table's own inputs
(``kernels/native_pairs.py`` binds both; fused kernels are compared with LayerNorm and their
own Philox mask). A row whose device or toolchain is absent names it ("needs cuda").

Check (tiny sizes): the table covers every (backend, op) the kernel packages export and
every row is either measured or names the missing capability; every custom kernel that can
run here (CPU extension natively, Triton in the interpreter) equals its native op. Bench:
the table at cpu/gpu size (on GPU: matmul 4096^3 and LayerNorm/softmax in bfloat16, sums in
float32), plus ``<kernel>_speedup`` and ``<kernel>_pct_peak`` metrics.

Lesson: a custom kernel earns its place only against the native op at the same shape and
dtype. The targets on a GPU are those of the kernel tasks: Triton matmul >= 85% of cuBLAS
(the Triton tutorial's matmul reaches cuBLAS-level performance on fp16: "Matrix
Multiplication", triton-lang.org), fused memory-bound kernels >= 80% of measured copy
bandwidth; on a CPU, the C++ extension's sum at torch.sum's rate (both memory-bound) and
its fused LayerNorm+Dropout Philox-bound (see m3.fused_ln_dropout).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any

import torch

from harness import Comparison, capabilities, task
from harness.checks import tolerance_for
from harness.claims import metric
from harness.gpu_check import worst_elements
from harness.mutants import Mutant
from harness.timing import measure
from kernels.native_pairs import COLUMNS, WORK, Kernel, Work, exported_ops, peak_of, row_rates


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


_TRITON, _CUDA, _CPP = ("cuda", "triton"), ("cuda", "nvcc"), ("cpp_ext",)
_LN, _LN_NATIVE = "layer_norm_dropout", "F.layer_norm + F.dropout"
KERNELS: tuple[Kernel, ...] = (
    Kernel("C++ ext LayerNorm+Dropout", "kernels.cpp", _LN, "cpu", _LN_NATIVE, _CPP),
    Kernel("C++ ext sum", "kernels.cpp", "sum", "cpu", "torch.sum", _CPP),
    Kernel("Triton matmul", "kernels.triton", "matmul", "cuda", "torch.matmul (cuBLAS)", _TRITON, True),
    Kernel("Triton LayerNorm+Dropout", "kernels.triton", _LN, "cuda", _LN_NATIVE, _TRITON, True),
    Kernel("Triton sum", "kernels.triton", "sum", "cuda", "torch.sum", _TRITON, True),
    Kernel("Triton softmax", "kernels.triton", "softmax", "cuda", "torch.softmax", _TRITON, True),
    Kernel("CUDA LayerNorm+Dropout", "kernels.cuda", _LN, "cuda", _LN_NATIVE, _CUDA),
    Kernel("CUDA sum", "kernels.cuda", "sum", "cuda", "torch.sum", _CUDA),
)


# -- wrong tables (the mutants) ------------------------------------------------------------------
def _missing_cuda_sum(self):
    """WRONG: the table forgets a kernel the packages export."""
    return tuple(k for k in KERNELS if k.name != "CUDA sum")


def _edited_work(name: str, edit):
    """WRONG: row ``name``'s custom call replaced by ``edit(work)``."""

    def work(self, k, s, device, dtype, seed):
        w = NativeComparison.work(self, k, s, device, dtype, seed)
        return dataclasses.replace(w, custom=edit(w)) if k.name == name else w

    return {"work": work}


def _silent_rows(self, ctx, s, *, time_it, seed=None):
    """WRONG: rows that can neither run nor say why (blank status)."""
    rows = NativeComparison.build_rows(self, ctx, s, time_it=time_it, seed=seed)
    for r in rows:
        if r["status"] and r["status"].startswith("needs"):
            r["status"] = ""
    if not any(r["status"] == "" for r in rows):  # on a GPU machine every row runs: blank one
        rows[-1].update(status="", equal_to_native=None)
    return rows


_SOFTMAX_OFF = _edited_work("Triton softmax", lambda w: lambda: w.custom() * 1.001)
_TORCH_MASK = _edited_work("C++ ext LayerNorm+Dropout", lambda w: w.native)
_SILENT = {"build_rows": _silent_rows}
_PCT = "{} LayerNorm+Dropout reaches >= 80% of the measured copy bandwidth (bf16, gpu size)"
_MM = "Triton matmul >= 85% of cuBLAS's speed (bf16, 4096^3)"
_SUM = "the C++ ext sum >= 0.9x torch.sum's speed (both memory-bound)"


@task("m3.native_comparison", seed="m3", title="benchmark custom kernels against PyTorch native")
class NativeComparison(Comparison):
    __doc__ = __doc__
    variants = ("table",)
    gpu_check = True
    sizes = {
        "tiny": TableSizes(ln=(7, 33), sum_n=1003, mm=33, softmax=(5, 37), min_run_time_s=0.02),
        "cpu": TableSizes(ln=(4096, 1024), sum_n=2**24, mm=1024, softmax=(4096, 1024)),
        "gpu": TableSizes((16384, 4096), 2**28, 4096, (16384, 4096), low_precision=True, cpu_rows="cpu"),
    }
    metrics = {
        "triton_matmul_speedup": "cuBLAS time / Triton matmul time (x)",
        "cuda_layernorm_dropout_pct_peak": "CUDA fused LN+dropout GB/s / copy GB/s, %",
        "triton_layernorm_dropout_pct_peak": "Triton fused LN+dropout GB/s / copy GB/s, %",
        "c_ext_sum_speedup": "torch.sum time / C++ ext sum time (x)",
    }
    claims = (
        metric("triton_matmul_speedup", ">=", 0.85, text=_MM, device="cuda"),
        metric("cuda_layernorm_dropout_pct_peak", ">=", 80, text=_PCT.format("CUDA"), device="cuda"),
        metric("triton_layernorm_dropout_pct_peak", ">=", 80, text=_PCT.format("Triton"), device="cuda"),
        metric("c_ext_sum_speedup", ">=", 0.9, text=_SUM, device="cpu"),
    )
    mutants = (
        Mutant(
            "table_misses_a_kernel", "no CUDA sum row", {"kernels": _missing_cuda_sum}, match="exports a sum kernel"
        ),
        Mutant("triton_softmax_off", "Triton softmax 0.1% off", _SOFTMAX_OFF, match="Triton softmax == native"),
        Mutant("ln_with_torch_mask", "C++ LN+dropout: torch's mask", _TORCH_MASK, match="C++ ext LayerNorm+Dropout =="),
        Mutant("row_without_reason", "a row not run nor explained", _SILENT, match="neither checked"),
    )

    def kernels(self) -> tuple[Kernel, ...]:
        return KERNELS

    def work(self, k: Kernel, s: TableSizes, device, dtype, seed: int) -> Work:
        return WORK[k.op](k, s, device, dtype, seed)

    def _dtype(self, k: Kernel, s: TableSizes) -> torch.dtype:
        return torch.bfloat16 if (s.low_precision and k.device == "cuda" and k.op != "sum") else torch.float32

    def build_rows(self, ctx, s: TableSizes, *, time_it: bool, seed: int | None = None) -> list[dict[str, Any]]:
        """One row per kernel; runs (and times) what can run here, checks every output against native."""
        rows = []
        for k in self.kernels():
            row = dict.fromkeys(COLUMNS)
            row.update(kernel=k.name, backend=k.backend, device=k.device, native=k.native)
            miss = capabilities.missing(list(k.requires))
            if k.device == "cuda" and not ctx.has("cuda"):
                miss = sorted(set(miss) | {"cuda"})
            interp = bool(miss) and k.interpretable and ctx.has("triton") and not ctx.has("cuda") and not time_it
            why = None if (interp or not miss) else capabilities.skip_reason(miss)
            if why is None and (reason := self.not_runnable(ctx, k)):
                why = f"skipped: {reason}"
            if why:
                rows.append({**row, "status": why})
                continue
            # a CUDA row runs on the run's GPU, or on cuda:0 when the run itself is on the CPU
            gpu = ctx.device if ctx.is_cuda else torch.device("cuda")
            device = torch.device("cpu") if (interp or k.device == "cpu") else gpu
            sz = self.sizes[s.cpu_rows] if (k.device == "cpu" and s.cpu_rows) else s
            dtype = self._dtype(k, sz)
            w = self.work(k, sz, device, dtype, ctx.rng_seed if seed is None else seed)
            row.update(shape=w.shape, dtype=str(dtype).removeprefix("torch."))
            out, ref = w.custom(), w.native_for_equality()
            tol = w.tol or tolerance_for(dtype)
            worst = worst_elements(out, ref, rtol=tol.rtol, atol=tol.atol)  # large outputs compared on the device
            at = f"{w.shape} {row['dtype']} on {device.type}"
            c = ctx.assert_close(*worst, name=f"{k.name} == native", where=at, rtol=tol.rtol, atol=tol.atol)
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
        """Why row ``k`` is skipped though its capabilities are present: a CPU row in a CUDA run
        (it would build the CPU extension on a lent GPU's time) or a failed extension build."""
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
        row.update(row_rates(w, t_custom, t_native, peak_of(device, ctx.device, ctx.peak)))
        slug = re.sub(r"[^a-z0-9]+", "_", k.name.lower()).strip("_")  # "C++ ext sum" -> "c_ext_sum"
        ctx.metric(f"{slug}_speedup", t_native / t_custom)
        if row["custom_pct_peak"] is not None:
            ctx.metric(f"{slug}_pct_peak", row["custom_pct_peak"])

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
                msg = f"{backend} exports a {op} kernel that the table lacks"
                ctx.expect((backend, op) in covered, msg, name="the table covers every custom kernel")
        for r in rows:
            ok = r["equal_to_native"] is not None or (r["status"] or "").startswith(("needs ", "skipped: "))
            msg = f"row {r['kernel']!r} is neither checked nor skipped with a reason: {r['status']}"
            ctx.expect(ok, msg, name="every row checked or skipped with a reason")

    def bench(self, ctx) -> None:
        s = ctx.configs[0]
        rows = self.build_rows(ctx, s, time_it=True)
        ctx.table(f"custom kernels vs native ({ctx.device.type} run, {ctx.size} size)", rows)
        for r in rows:
            if r["status"] != "measured":
                ctx.skip_part(f"{r['kernel']} ({r['device']})", r["status"])
