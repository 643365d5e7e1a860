"""Sample a GPU's utilization, memory, power and clock from NVML in a background thread.

::

    with GpuMonitor(interval_s=0.05) as mon:    # CUDA device 0
        run_the_workload()
    ctx.note(mon.report())                      # "NVIDIA H200: GPU busy 87% (mean) ..."
    for k, v in mon.summary().items():
        ctx.metric(k, v)

Where there is no GPU (no driver, no ``nvidia-ml-py``, or NVML sees no device) the monitor
starts and stops without a thread, ``available`` is False, ``summary()`` is empty and
``report()`` says "no GPU was found" with the reason.

What the numbers mean (NVML API reference, ``nvmlDeviceGetUtilizationRates``):
``gpu_util_pct`` is the percent of the driver's last sample period (between 1/6 s and 1 s
depending on the product) during which at least one kernel was running: it says the GPU was
*busy*, not how much of it was used (one tiny kernel on one SM counts as 100%).
``mem_util_pct`` is the percent of that period during which device memory was being read or
written. Sampling faster than the driver's period repeats values; the default 50 ms interval
is there to catch short phases, not for resolution. ``mem_used_mb`` is the device's used
memory as NVML sees it (all processes, including the CUDA context and the caching allocator's
reserve), in MB (10**6 bytes).

Device numbering: ``device_index`` is a CUDA device index (as torch numbers them, after
``CUDA_VISIBLE_DEVICES``), mapped to NVML's numbering through torch where torch can; pass
``nvml_index`` to address an NVML device directly.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from types import ModuleType
from typing import Any

__all__ = ["GpuMonitor", "GpuSample", "NO_GPU"]

#: Prefix of ``report()`` and ``reason`` where the monitor found no GPU.
NO_GPU = "no GPU was found"


@dataclasses.dataclass(frozen=True)
class GpuSample:
    """One NVML reading."""

    t_s: float
    """seconds since the monitor started"""
    gpu_util_pct: float
    """percent of the driver's sample period with a kernel running (0-100)"""
    mem_util_pct: float
    """percent of the driver's sample period with device memory being read or written (0-100)"""
    mem_used_mb: float
    """device memory in use by all processes, MB (10**6 bytes)"""
    power_w: float | None = None
    """board power draw, watts; None where the device does not report it"""
    sm_clock_mhz: float | None = None
    """current SM clock, MHz; None where not reported"""


def _import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _nvml_index(cuda_index: int) -> int:
    """NVML index of CUDA device ``cuda_index`` (honours CUDA_VISIBLE_DEVICES through torch)."""
    try:
        import torch

        if torch.cuda.is_available() and hasattr(torch.cuda, "_get_nvml_device_index"):
            return int(torch.cuda._get_nvml_device_index(cuda_index))
    except Exception:  # noqa: BLE001 - any failure of the private helper: fall back to the same number
        pass
    return cuda_index


class GpuMonitor:
    """Background NVML sampler; see the module docstring.

    Args:
        device_index: CUDA device index (default 0), mapped to NVML's numbering.
        interval_s: seconds between samples (> 0).
        nvml_index: NVML device index; overrides ``device_index``.
        nvml: the NVML module to use (default ``pynvml`` from nvidia-ml-py); tests pass a fake.

    Attributes:
        available: a GPU was found and NVML started.
        reason: why not, when ``available`` is False ("no GPU was found: ...").
        name: the device's name (e.g. "NVIDIA H200") when available.
        samples: readings so far (a copy is returned by ``stop()``).
        errors: readings that failed (NVML errors during sampling), with ``last_error``.

    Raises:
        ValueError: ``interval_s <= 0`` or a negative index.
    """

    def __init__(
        self,
        device_index: int = 0,
        *,
        interval_s: float = 0.05,
        nvml_index: int | None = None,
        nvml: ModuleType | Any | None = None,
    ):
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0 seconds, got {interval_s}")
        if device_index < 0 or (nvml_index is not None and nvml_index < 0):
            raise ValueError("device indices must be >= 0")
        self.interval_s = interval_s
        self.samples: list[GpuSample] = []
        self.errors = 0
        self.last_error = ""
        self.name = ""
        self.available = False
        self.reason = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._t0 = 0.0
        self._handle = None
        self._nvml = nvml if nvml is not None else _import_nvml()
        if self._nvml is None:
            self.reason = f"{NO_GPU}: nvidia-ml-py (pynvml) is not installed"
            return
        try:
            self._nvml.nvmlInit()
        except Exception as e:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.reason = f"{NO_GPU}: NVML could not start ({type(e).__name__}: {e})"
            return
        try:
            count = self._nvml.nvmlDeviceGetCount()
            index = nvml_index if nvml_index is not None else _nvml_index(device_index)
            if count == 0 or index >= count:
                self.reason = f"{NO_GPU}: NVML sees {count} device(s), asked for index {index}"
                self._nvml.nvmlShutdown()
                return
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            name = self._nvml.nvmlDeviceGetName(self._handle)
            self.name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception as e:  # noqa: BLE001
            self.reason = f"{NO_GPU}: NVML failed to open the device ({type(e).__name__}: {e})"
            self._nvml.nvmlShutdown()
            return
        self.available = True

    # -- reading ------------------------------------------------------------------------------
    def _optional(self, fn, *args) -> float | None:
        try:
            return float(fn(self._handle, *args))
        except Exception:  # noqa: BLE001 - NVMLError_NotSupported on some boards/VMs
            return None

    def sample_once(self) -> GpuSample:
        """Read one sample now (raises what NVML raises)."""
        nv = self._nvml
        if nv is None:
            raise RuntimeError("NVML is not available on this machine (no GPU or nvidia-ml-py missing)")
        util = nv.nvmlDeviceGetUtilizationRates(self._handle)
        mem = nv.nvmlDeviceGetMemoryInfo(self._handle)
        power_mw = self._optional(nv.nvmlDeviceGetPowerUsage)
        clock = self._optional(nv.nvmlDeviceGetClockInfo, getattr(nv, "NVML_CLOCK_SM", 1))
        return GpuSample(
            t_s=time.perf_counter() - self._t0,
            gpu_util_pct=float(util.gpu),
            mem_util_pct=float(util.memory),
            mem_used_mb=mem.used / 1e6,
            power_w=None if power_mw is None else power_mw / 1e3,
            sm_clock_mhz=clock,
        )

    def _run(self) -> None:
        while True:
            try:
                s = self.sample_once()
                with self._lock:
                    self.samples.append(s)
            except Exception as e:  # noqa: BLE001 - a failed reading is counted, sampling goes on
                with self._lock:
                    self.errors += 1
                    self.last_error = f"{type(e).__name__}: {e}"
            if self._stop.wait(self.interval_s):
                return

    # -- control ------------------------------------------------------------------------------
    def start(self) -> GpuMonitor:
        """Start sampling (a no-op without a GPU). Raises RuntimeError if already running."""
        if self._thread is not None:
            raise RuntimeError("GpuMonitor is already running; stop() it first")
        self.samples, self.errors, self.last_error = [], 0, ""
        self._t0 = time.perf_counter()
        if not self.available:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="GpuMonitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[GpuSample]:
        """Stop sampling (one last reading is taken first) and return the samples."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            try:  # the end of the workload, even if it was shorter than one interval
                self.samples.append(self.sample_once())
            except Exception as e:  # noqa: BLE001
                self.errors += 1
                self.last_error = f"{type(e).__name__}: {e}"
        return list(self.samples)

    def close(self) -> None:
        """Stop and release NVML (nvmlInit/nvmlShutdown are reference-counted)."""
        self.stop()
        if self.available and self._nvml is not None:
            self._nvml.nvmlShutdown()
            self.available = False
            self.reason = "closed"

    def __enter__(self) -> GpuMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- results ------------------------------------------------------------------------------
    def summary(self) -> dict[str, float]:
        """Aggregates of the samples, units in the names; {} without a GPU or samples."""
        s = list(self.samples)
        if not s:
            return {}
        out = {
            "gpu_util_mean_pct": statistics.fmean(x.gpu_util_pct for x in s),
            "gpu_util_max_pct": max(x.gpu_util_pct for x in s),
            "mem_util_mean_pct": statistics.fmean(x.mem_util_pct for x in s),
            "mem_used_max_mb": max(x.mem_used_mb for x in s),
            "n_samples": float(len(s)),
            "duration_s": s[-1].t_s,
        }
        power = [x.power_w for x in s if x.power_w is not None]
        if power:
            out["power_mean_w"] = statistics.fmean(power)
        clocks = [x.sm_clock_mhz for x in s if x.sm_clock_mhz is not None]
        if clocks:
            out["sm_clock_mean_mhz"] = statistics.fmean(clocks)
        return out

    def report(self) -> str:
        """One line for a note: the figures, or why there are none."""
        if not self.available and not self.samples:
            return self.reason
        sm = self.summary()
        if not sm:
            return f"{self.name}: no samples" + (f" ({self.errors} failed: {self.last_error})" if self.errors else "")
        text = (
            f"{self.name}: GPU busy {sm['gpu_util_mean_pct']:.0f}% (mean), {sm['gpu_util_max_pct']:.0f}% (max), "
            f"memory busy {sm['mem_util_mean_pct']:.0f}%, {sm['mem_used_max_mb']:.0f} MB used (max), "
            f"{int(sm['n_samples'])} samples over {sm['duration_s']:.2f} s"
        )
        if "power_mean_w" in sm:
            text += f", {sm['power_mean_w']:.0f} W"
        if "sm_clock_mean_mhz" in sm:
            text += f", SM {sm['sm_clock_mean_mhz']:.0f} MHz"
        if self.errors:
            text += f"; {self.errors} readings failed ({self.last_error})"
        return text
