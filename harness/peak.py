"""This machine's measured ceilings: peak matmul rate and copy bandwidth.

Datasheet rates are leads, not ceilings: the harness measures them once per machine
and stores them in ``results/peaks/<machine_id>.json`` (committed, a few lines), so
every task with ``flops``/``bytes`` can report % of peak.

* ``matmul_gflops``: a large float32 matmul (CPU: 2048^3 through torch's BLAS; CUDA:
  8192^3 with TF32 off). On CUDA also ``matmul_bf16_gflops``.
* ``copy_gbps``: ``dst.copy_(src)`` of 256 MiB (CPU) or 2 GiB (CUDA), counting bytes
  read plus bytes written (METHOD: "a large device-to-device copy, counting bytes
  read plus bytes written").

Inputs are random, never zeros (zeros can run faster than real data).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import torch

from harness.fingerprint import REPO_ROOT, fingerprint, machine_id
from harness.results import atomic_write_json
from harness.timing import measure

PEAKS_DIR = REPO_ROOT / "results" / "peaks"


def _gemm_gflops(n: int, dtype: torch.dtype, device: torch.device, min_run_time_s: float) -> float:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    m = measure(
        lambda: torch.matmul(a, b, out=out),
        device,
        mode="auto" if device.type == "cpu" else "warm",
        min_run_time_s=min_run_time_s,
    )
    return 2 * n**3 / (m.median_ms / 1e3) / 1e9


def _copy_gbps(nbytes: int, device: torch.device, min_run_time_s: float) -> float:
    src = torch.rand(nbytes // 4, generator=torch.Generator().manual_seed(1)).to(device)
    dst = torch.empty_like(src)
    m = measure(
        lambda: dst.copy_(src), device, mode="auto" if device.type == "cpu" else "warm", min_run_time_s=min_run_time_s
    )
    return 2 * nbytes / (m.median_ms / 1e3) / 1e9


def measure_peak(device: str | torch.device = "cpu", *, quick: bool = False) -> dict[str, Any]:
    """Measure the ceilings of ``device``; ``quick`` uses smaller sizes (tests)."""
    device = torch.device(device)
    t = 0.2 if quick else 1.0
    if device.type == "cuda":
        prev = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            peak = {
                "matmul_gflops": _gemm_gflops(2048 if quick else 8192, torch.float32, device, t),
                "matmul_bf16_gflops": _gemm_gflops(2048 if quick else 8192, torch.bfloat16, device, t),
                "copy_gbps": _copy_gbps((256 if quick else 2048) * 2**20, device, t),
            }
        finally:
            torch.backends.cuda.matmul.allow_tf32 = prev
    else:
        peak = {
            "matmul_gflops": _gemm_gflops(512 if quick else 2048, torch.float32, device, t),
            "copy_gbps": _copy_gbps((32 if quick else 256) * 2**20, device, t),
        }
    peak = {k: round(v, 1) for k, v in peak.items()}
    peak["device"] = str(device)
    peak["measured_utc"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    peak["torch"] = torch.__version__
    peak["torch_threads"] = torch.get_num_threads()
    return peak


def peak_path(device: str | torch.device = "cpu", peaks_dir: Path | None = None) -> Path:
    device = torch.device(device)
    return (peaks_dir or PEAKS_DIR) / f"{machine_id(fingerprint())}_{device.type}.json"


def load_or_measure(
    device: str | torch.device = "cpu", *, peaks_dir: Path | None = None, remeasure: bool = False, quick: bool = False
) -> dict[str, Any]:
    """The stored peak of this machine and device, measuring (and storing) it the first time.

    A corrupt or foreign file is re-measured and replaced.
    """
    path = peak_path(device, peaks_dir)
    if path.exists() and not remeasure:
        try:
            data = json.loads(path.read_text())
            if "matmul_gflops" in data and "copy_gbps" in data:
                return data
        except (OSError, json.JSONDecodeError):
            pass
    data = measure_peak(device, quick=quick)
    atomic_write_json(path, data, indent=1)
    return data
