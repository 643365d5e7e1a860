"""This machine's measured ceilings: peak matmul rate per dtype and copy bandwidth.

Datasheet rates are leads, not ceilings: the harness measures them once per machine
and stores them in ``results/peaks/<machine_id>_<device>.json`` (committed, a few lines),
so every task with ``flops``/``bytes`` can report % of peak.

* ``matmul_gflops``: a large float32 matmul (CPU: 2048^3 through torch's BLAS; CUDA:
  8192^3 with TF32 off). On CUDA also the tensor-core rates ``matmul_bf16_gflops`` and
  ``matmul_fp16_gflops`` (8192^3). A row's % of peak uses the peak of its own dtype
  (:func:`peak_key`); a dtype with no measured peak (float64, bf16 on a CPU) gets no %.
* ``copy_gbps``: ``dst.copy_(src)`` of 256 MiB (CPU) or 2 GiB (CUDA), counting bytes
  read plus bytes written (METHOD: "a large device-to-device copy, counting bytes
  read plus bytes written").

Measured quiet, as far as the machine allows: each figure is the best of
:data:`ATTEMPTS` timings (other work only ever slows a run down), the 1-minute load
average before and after is stored beside it (``load_avg_1m``, ``loaded``: more runnable
processes than the cores the measurement did not use), and CPU peaks are measured at the
intra-op thread count the benchmarks use and stored per thread count. Inputs are random,
never zeros (zeros can run faster than real data), and made on the device. On CUDA the
measurement frees its memory (``torch.cuda.empty_cache()``) before returning, so the
parent process does not hold GiBs that the tasks' worker then lacks.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from harness.fingerprint import REPO_ROOT, fingerprint, machine_id
from harness.results import atomic_write_json
from harness.timing import NoisyMeasurementWarning, measure

#: Where measured peaks are kept (committed, one file per machine, device and thread count);
#: ``$DRILLS_PEAKS_DIR`` points elsewhere (the test suite does, so tests never write here).
PEAKS_DIR = REPO_ROOT / "results" / "peaks"
PEAKS_DIR_ENV = "DRILLS_PEAKS_DIR"
#: Timings per figure; the best is kept.
ATTEMPTS = 3
#: Run dtype -> the key of the peak its GFLOP/s are judged against.
PEAK_KEYS: dict[torch.dtype, str] = {
    torch.float32: "matmul_gflops",
    torch.bfloat16: "matmul_bf16_gflops",
    torch.float16: "matmul_fp16_gflops",
}


def peak_key(dtype: torch.dtype) -> str | None:
    """The peak key for a measurement in ``dtype`` (None: no peak is measured for it, show no %)."""
    return PEAK_KEYS.get(dtype)


def _load_avg() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _competing(load: float | None, used: int) -> bool:
    """Other work on more than the cores a measurement on ``used`` threads leaves free."""
    return load is not None and load > _cores() - used


def _best_rate(fn, work: float, device: torch.device, min_run_time_s: float, attempts: int) -> float:
    """Best of ``attempts`` median rates of ``fn`` (work units per second)."""
    mode = "auto" if device.type == "cpu" else "warm"
    # a peak is the best of several attempts and is judged by the load around it (``loaded``):
    # per-attempt noisy/contended warnings would only spill raw warning lines into the CLI
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoisyMeasurementWarning)  # ContendedMeasurementWarning too
        rates = [
            work / (measure(fn, device, mode=mode, min_run_time_s=min_run_time_s).median_ms / 1e3)
            for _ in range(attempts)
        ]
    return max(rates)


def _gemm_gflops(n: int, dtype: torch.dtype, device: torch.device, min_run_time_s: float, attempts: int) -> float:
    g = torch.Generator(device).manual_seed(0)
    a = torch.randn(n, n, generator=g, device=device).to(dtype)  # (n, n)
    b = torch.randn(n, n, generator=g, device=device).to(dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    rate = _best_rate(lambda: torch.matmul(a, b, out=out), 2 * n**3, device, min_run_time_s, attempts)
    return rate / 1e9


def _copy_gbps(nbytes: int, device: torch.device, min_run_time_s: float, attempts: int) -> float:
    src = torch.rand(nbytes // 4, generator=torch.Generator(device).manual_seed(1), device=device)
    dst = torch.empty_like(src)
    rate = _best_rate(lambda: dst.copy_(src), 2 * nbytes, device, min_run_time_s, attempts)
    return rate / 1e9


def measure_peak(
    device: str | torch.device = "cpu", *, quick: bool = False, threads: int | None = None, attempts: int = ATTEMPTS
) -> dict[str, Any]:
    """Measure the ceilings of ``device``; ``quick`` uses smaller sizes (tests).

    Args:
        threads: CPU intra-op threads to measure with (default: torch's current setting,
            which is what the benchmarks run with); restored afterwards.
        attempts: timings per figure, best kept.

    Returns:
        ``{"matmul_gflops", "copy_gbps", (CUDA) "matmul_bf16_gflops", "matmul_fp16_gflops",
        "device", "measured_utc", "torch", "torch_threads", "attempts", "load_avg_1m",
        "load_avg_1m_after", "loaded"}``; rates in GFLOP/s and GB/s.
    """
    device = torch.device(device)
    t = 0.2 if quick else 1.0
    prev_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    load_before = _load_avg()
    try:
        if device.type == "cuda":
            prev = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            n = 2048 if quick else 8192
            try:
                peak = {
                    "matmul_gflops": _gemm_gflops(n, torch.float32, device, t, attempts),
                    "matmul_bf16_gflops": _gemm_gflops(n, torch.bfloat16, device, t, attempts),
                    "matmul_fp16_gflops": _gemm_gflops(n, torch.float16, device, t, attempts),
                    "copy_gbps": _copy_gbps((256 if quick else 2048) * 2**20, device, t, attempts),
                }
            finally:
                torch.backends.cuda.matmul.allow_tf32 = prev
                torch.cuda.synchronize(device)
                torch.cuda.empty_cache()  # hand the GiBs back: the tasks run in another process
        else:
            peak = {
                "matmul_gflops": _gemm_gflops(512 if quick else 2048, torch.float32, device, t, attempts),
                "copy_gbps": _copy_gbps((32 if quick else 256) * 2**20, device, t, attempts),
            }
        used = torch.get_num_threads() if device.type == "cpu" else 1
    finally:
        torch.set_num_threads(prev_threads)
    out: dict[str, Any] = {k: round(v, 1) for k, v in peak.items()}
    load_after = _load_avg()
    cores = _cores()
    loaded = _competing(load_before, used)
    out.update(
        device=str(device),
        measured_utc=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        torch=torch.__version__,
        torch_threads=used if device.type == "cpu" else prev_threads,
        attempts=attempts,
        load_avg_1m=load_before,
        load_avg_1m_after=load_after,
        loaded=bool(loaded),
    )
    if loaded:
        warnings.warn(
            f"peak of {device} measured under load (load average {load_before} -> {load_after} on {cores} cores): "
            "best of several attempts, but likely below the true ceiling; re-measure on a quiet machine "
            "(`drills env --measure-peak`)",
            stacklevel=2,
        )
    return out


def peak_path(device: str | torch.device = "cpu", peaks_dir: Path | None = None, threads: int | None = None) -> Path:
    """Where the peak of ``device`` is stored: ``<machine>_<device>.json``.

    CPU peaks depend on the thread count: the file holds the peak at one count (its
    ``torch_threads``); another count (``threads``, default torch's current one) reads and
    writes ``<machine>_cpu_t<threads>.json`` instead.
    """
    device = torch.device(device)
    env = os.environ.get(PEAKS_DIR_ENV)
    root = peaks_dir or (Path(env) if env else PEAKS_DIR)
    base = root / f"{machine_id(fingerprint())}_{device.type}.json"
    if device.type != "cpu":
        return base
    n = threads or torch.get_num_threads()
    try:
        stored = json.loads(base.read_text()).get("torch_threads")
    except (OSError, ValueError, AttributeError):
        return base
    return base if stored in (n, None) else base.with_name(f"{base.stem}_t{n}.json")


def load_or_measure(
    device: str | torch.device = "cpu",
    *,
    peaks_dir: Path | None = None,
    remeasure: bool = False,
    quick: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """The stored peak of this machine and device, measuring (and storing) it the first time.

    A corrupt or foreign file, a CPU peak of another thread count, or a peak measured under
    load (``loaded``) while the machine is now quiet is re-measured (see :func:`peak_path` for
    where each goes). ``threads``: the benchmarks' intra-op threads.
    """
    path = peak_path(device, peaks_dir, threads)
    if path.exists() and not remeasure:
        try:
            data = json.loads(path.read_text())
            n = threads or torch.get_num_threads()
            same_threads = torch.device(device).type != "cpu" or data.get("torch_threads", n) == n
            # a peak taken under load is replaced once the machine is quiet enough for a better one
            stale = bool(data.get("loaded")) and not _competing(
                _load_avg(), n if torch.device(device).type == "cpu" else 1
            )
            if "matmul_gflops" in data and "copy_gbps" in data and same_threads and not stale:
                return data
        except (OSError, json.JSONDecodeError):
            pass
    data = measure_peak(device, quick=quick, threads=threads)
    atomic_write_json(path, data, indent=1)
    return data
