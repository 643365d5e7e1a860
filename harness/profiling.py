"""Profiling helpers: marked ranges (profiler and NVTX), operator rankings by self time, a trace.

* :func:`mark`: a range that shows in a ``torch.profiler`` trace (``record_function``) and in
  Nsight Systems (NVTX, through the ``nvtx`` package when importable, else
  ``torch.cuda.nvtx``; a no-op without a GPU tool attached);
* :func:`top_ops`: the k operators with the largest *self* time (time inside the op minus its
  children) from ``prof.key_averages()``, excluding ranges, torch's wrappers and CUDA
  runtime calls (:func:`is_operator`); :func:`self_ms_by_name` sums raw events instead, an
  independent account to check a ranking against;
* :func:`profile_steps`: warm up, profile some steps, write a Chrome trace
  (chrome://tracing or https://ui.perfetto.dev).

Used by m4.profile_resnet18 (PyTorch docs, "torch.profiler").
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, record_function

#: The ranges tasks mark (:func:`mark`): they are not operators and never count in a ranking.
RANGES = ("forward", "backward", "optimizer")
_NOT_OPS = ("ProfilerStep", "Optimizer.", "[memory]", "autograd::engine::evaluate_function", "cudaDeviceSynchronize")


def nvtx_range(name: str):
    """An NVTX range (no-op without a GPU tool attached)."""
    try:
        import nvtx

        return nvtx.annotate(name, domain="torchdrills")
    except ImportError:
        if torch.cuda.is_available():
            return torch.cuda.nvtx.range(name)
        return contextlib.nullcontext()


@contextlib.contextmanager
def mark(name: str):
    """A range in the profiler trace and in NVTX."""
    with record_function(name), nvtx_range(name):
        yield


def activities(device: torch.device) -> list:
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])


_RUNTIME_API = re.compile(r"^cu(da)?[A-Z]")  # cudaLaunchKernel, cuLaunchKernelEx, cudaMemcpyAsync, ...


def is_operator(name: str) -> bool:
    """An operator or kernel: not a range of ours, torch's wrappers or a CUDA runtime/driver call."""
    return bool(name) and name not in RANGES and not name.startswith(_NOT_OPS) and not _RUNTIME_API.match(name)


def _self_us(e, device_time: bool) -> float:
    if device_time:  # renamed from self_cuda_time_total in torch 2.4
        return float(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)))
    return float(e.self_cpu_time_total)


def top_ops(averages, k: int = 3, *, device_time: bool = False) -> list[dict]:
    """The ``k`` operators with the largest self time in ``prof.key_averages()``, descending.

    Rows: ``op``, ``self_ms`` (total over the profiled steps), ``calls``. Our ranges,
    torch's wrappers and runtime calls are excluded (:func:`is_operator`). ``device_time``
    ranks GPU kernels (rows whose device is CUDA) by self device time; otherwise CPU-side
    operators by self CPU time (on a GPU that is their host cost: dispatch and launch).
    """
    cuda_type = torch.autograd.DeviceType.CUDA
    rows = [
        {"op": e.key, "self_ms": _self_us(e, device_time) / 1e3, "calls": int(e.count)}
        for e in averages
        if is_operator(e.key) and ((getattr(e, "device_type", None) == cuda_type) == device_time)
    ]
    rows.sort(key=lambda r: r["self_ms"], reverse=True)
    return rows[:k]


def self_ms_by_name(events) -> dict[str, float]:
    """Self CPU ms per operator name summed over raw profiler events (independent of key_averages)."""
    out: dict[str, float] = defaultdict(float)
    for e in events:
        if is_operator(e.name):
            out[e.name] += e.self_cpu_time_total / 1e3
    return dict(out)


def profile_steps(step: Callable[[], Any], steps: int, device: torch.device, trace: Path):
    """Warm up once, profile ``steps`` calls of ``step``, write the Chrome trace; return the profiler."""
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    with profile(activities=activities(device)) as prof:
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    prof.export_chrome_trace(str(trace))
    return prof
