"""The one timer of the harness.

* CPU: ``torch.utils.benchmark.Timer.blocked_autorange`` picks how many calls make one
  block (so each sample is well above timer resolution) and runs blocks until
  ``min_run_time_s`` has passed; each block's mean per-call time is one raw sample.
* CUDA: CUDA events around each call after warm-up. In cold-L2 mode (the default) a
  buffer twice the L2 size is overwritten before every sample so the call starts from
  HBM, as it would in a real model between layers; warm-L2 mode skips the flush.
  Events of all samples are read after a single synchronize, so the host never stalls
  the queue between samples. Host overhead is the wall-clock time per call (host clock
  around one synchronised call) minus the device time.
* CUDA-graph replay is its own mode: the call is captured once and the graph replayed.

Raw samples are kept; the summary is the median and the interquartile range (IQR).
A sample set with IQR/median above :data:`NOISE_THRESHOLD` carries ``noisy=True`` and a
warning, because a difference smaller than that spread is noise (METHOD: "time the
same version twice").
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.utils.benchmark as tbench

#: IQR / median above which a measurement is flagged noisy (DESIGN.md: 10%).
NOISE_THRESHOLD = 0.10
#: Most raw samples kept in a run record per measurement (run records stay compact).
MAX_SAMPLES_KEPT = 64


class NoisyMeasurementWarning(UserWarning):
    """IQR/median of a measurement exceeded :data:`NOISE_THRESHOLD`."""


@dataclasses.dataclass
class Measurement:
    """Summary and raw samples of one timed callable; all times in milliseconds.

    Attributes:
        samples_ms: per-call time of each sample (a CPU block's mean, or one CUDA call).
        number_per_sample: calls averaged in one sample (1 on CUDA).
        mode: ``cpu``, ``cuda-cold-l2``, ``cuda-warm-l2`` or ``cuda-graph``.
        host_overhead_ms: wall time per call minus device time (CUDA modes only).
    """

    samples_ms: list[float]
    number_per_sample: int
    mode: str
    host_overhead_ms: float | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def iqr_ms(self) -> float:
        if len(self.samples_ms) < 4:
            return max(self.samples_ms) - min(self.samples_ms)
        q = statistics.quantiles(self.samples_ms, n=4, method="inclusive")
        return q[2] - q[0]

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    @property
    def noise(self) -> float:
        """IQR / median (dimensionless)."""
        m = self.median_ms
        return self.iqr_ms / m if m > 0 else 0.0

    @property
    def noisy(self) -> bool:
        return self.noise > NOISE_THRESHOLD

    def to_json(self) -> dict[str, Any]:
        s = self.samples_ms
        if len(s) > MAX_SAMPLES_KEPT:  # keep an even spread, first and last included
            step = (len(s) - 1) / (MAX_SAMPLES_KEPT - 1)
            s = [s[round(i * step)] for i in range(MAX_SAMPLES_KEPT)]
        d = {
            "median_ms": _sig(self.median_ms),
            "iqr_ms": _sig(self.iqr_ms),
            "min_ms": _sig(self.min_ms),
            "n_samples": len(self.samples_ms),
            "number_per_sample": self.number_per_sample,
            "mode": self.mode,
            "noisy": self.noisy,
            "samples_ms": [_sig(x) for x in s],
        }
        if self.host_overhead_ms is not None:
            d["host_overhead_ms"] = _sig(self.host_overhead_ms)
        return d


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cpu(fn: Callable[[], Any], *, min_run_time_s: float = 0.5, warmup: int = 1) -> Measurement:
    """Time ``fn`` on the CPU with ``torch.utils.benchmark`` (blocked autorange).

    Args:
        fn: zero-argument callable; allocation and compilation belong outside it.
        min_run_time_s: seconds of measurement (seconds, not calls).
        warmup: untimed calls first (caches, lazy init).
    """
    for _ in range(warmup):
        fn()
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_run_time_s)
    return Measurement(samples_ms=[t * 1e3 for t in m.times], number_per_sample=m.number_per_run, mode="cpu")


_L2_FLUSH: dict[int, torch.Tensor] = {}


def _l2_flush_buffer(device: torch.device) -> torch.Tensor:
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _L2_FLUSH:
        l2 = getattr(torch.cuda.get_device_properties(idx), "L2_cache_size", 50 * 2**20) or 50 * 2**20
        # Twice the L2 (H200: 2 x 50 MiB) so no line of the previous sample survives.
        _L2_FLUSH[idx] = torch.empty(2 * l2 // 4, dtype=torch.int32, device=device)
    return _L2_FLUSH[idx]


def time_cuda(
    fn: Callable[[], Any],
    *,
    device: torch.device | str = "cuda",
    cold_l2: bool = True,
    min_run_time_s: float = 0.5,
    warmup: int = 3,
    max_samples: int = 1000,
) -> Measurement:
    """Time ``fn`` on a CUDA device with events, one event pair per call.

    Args:
        cold_l2: overwrite a 2x-L2 buffer before each sample (its cost is outside the
            events) so each call starts with a cold L2.
        min_run_time_s: target total measured device time in seconds.
    """
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    _sync(device)
    flush = _l2_flush_buffer(device) if cold_l2 else None
    # Estimate one call to choose the sample count.
    t0 = time.perf_counter()
    fn()
    _sync(device)
    est = max(time.perf_counter() - t0, 1e-6)
    n = int(min(max_samples, max(10, min_run_time_s / est)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        if flush is not None:
            flush.zero_()
        starts[i].record()
        fn()
        ends[i].record()
    _sync(device)
    samples = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    # Host overhead: wall clock of synchronised single calls minus device time.
    walls = []
    for _ in range(min(n, 20)):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        walls.append((time.perf_counter() - t0) * 1e3)
    m = Measurement(samples_ms=samples, number_per_sample=1, mode="cuda-cold-l2" if cold_l2 else "cuda-warm-l2")
    m.host_overhead_ms = max(0.0, statistics.median(walls) - m.median_ms)
    return m


def time_cuda_graph(
    fn: Callable[[], Any], *, device: torch.device | str = "cuda", min_run_time_s: float = 0.5, warmup: int = 3
) -> Measurement:
    """Capture ``fn`` into a CUDA graph once and time its replays (warm L2).

    ``fn`` must be capturable: static shapes, no host synchronisation, no new
    allocations that outlive the capture (PyTorch docs, "CUDA Graphs").
    """
    device = torch.device(device)
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):  # warm-up on a side stream, as the docs require
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    m = time_cuda(graph.replay, device=device, cold_l2=False, min_run_time_s=min_run_time_s, warmup=warmup)
    m.mode = "cuda-graph"
    return m


def measure(
    fn: Callable[[], Any],
    device: torch.device | str = "cpu",
    *,
    mode: str = "auto",
    min_run_time_s: float = 0.5,
) -> Measurement:
    """Time ``fn`` on ``device`` and warn when the result is noisy.

    Args:
        mode: ``auto`` (cpu on CPU, cold-L2 on CUDA), ``cold``, ``warm`` or ``graph``.

    Raises:
        ValueError: for an unknown mode or a CUDA mode on a CPU device.
    """
    device = torch.device(device)
    if mode not in ("auto", "cold", "warm", "graph"):
        raise ValueError(f"unknown timing mode {mode!r}; use auto, cold, warm or graph")
    if device.type != "cuda":
        if mode in ("cold", "warm", "graph") and mode != "auto":
            raise ValueError(f"timing mode {mode!r} needs a CUDA device, got {device}")
        m = time_cpu(fn, min_run_time_s=min_run_time_s)
    elif mode == "graph":
        m = time_cuda_graph(fn, device=device, min_run_time_s=min_run_time_s)
    else:
        m = time_cuda(fn, device=device, cold_l2=(mode != "warm"), min_run_time_s=min_run_time_s)
    if m.noisy:
        warnings.warn(
            f"noisy measurement: IQR/median = {m.noise:.0%} (> {NOISE_THRESHOLD:.0%}); "
            "differences below this spread are noise",
            NoisyMeasurementWarning,
            stacklevel=2,
        )
    return m
