"""A fake ``pynvml`` whose one device is as busy as the training loop says it is.

``harness.gpu_monitor.GpuMonitor(nvml=FakeNVML(...), nvml_index=0)`` samples it like a real
GPU. The loop sets ``busy`` (True while a step computes) and ``mem_used_bytes``; every
reading is appended to ``log`` in the order the sampler made it, so a check can compare the
monitor's series with what "NVML" really returned. Power is reported as not supported (as
on many VMs and some boards), so the monitor's optional-field path runs too.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace


class NVMLError(Exception):
    """Stands for ``pynvml.NVMLError`` (its subclasses name the failure)."""


class FakeNVML:
    """Enough of the pynvml API for :class:`harness.gpu_monitor.GpuMonitor`.

    Args:
        name: the device name reported.
        count: devices NVML sees (0: a driver with no GPU).
        init_error: raised by ``nvmlInit`` (``NVMLError("Driver Not Loaded")``: a machine
            without a GPU driver).
        total_bytes: the device's memory, bytes.
        busy_util: percent reported while ``busy`` (and a quarter of it as memory-busy).

    Attributes:
        busy: set by the workload; utilisation reads ``busy_util`` while True, else 0.
        mem_used_bytes: set by the workload; what ``nvmlDeviceGetMemoryInfo`` reports as used.
        log: one ``[gpu_pct, mem_pct, used_bytes]`` per reading, in sampling order.
        inits / shutdowns: how often NVML was started and released.
    """

    NVML_CLOCK_SM = 1

    def __init__(
        self,
        *,
        name: str = "Fake GPU (NVML stand-in)",
        count: int = 1,
        init_error: Exception | None = None,
        total_bytes: int = 80 * 10**9,
        busy_util: int = 100,
    ):
        self.name, self.count, self.init_error = name, count, init_error
        self.total_bytes, self.busy_util = total_bytes, busy_util
        self.busy = False
        self.mem_used_bytes = 0
        self.log: list[list[float]] = []
        self.inits = self.shutdowns = 0
        self._lock = threading.Lock()

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        if not 0 <= index < self.count:
            raise NVMLError(f"Invalid Argument: no device {index}")
        return ("fake", index)

    def nvmlDeviceGetName(self, handle) -> bytes:
        return self.name.encode()  # older pynvml returns bytes; the monitor decodes

    def nvmlDeviceGetUtilizationRates(self, handle) -> SimpleNamespace:
        gpu = self.busy_util if self.busy else 0
        with self._lock:
            self.log.append([float(gpu), float(gpu // 4), float("nan")])
        return SimpleNamespace(gpu=gpu, memory=gpu // 4)

    def nvmlDeviceGetMemoryInfo(self, handle) -> SimpleNamespace:
        used = self.mem_used_bytes
        with self._lock:
            if self.log:
                self.log[-1][2] = float(used)  # the monitor reads memory right after utilisation
        return SimpleNamespace(used=used, total=self.total_bytes, free=self.total_bytes - used)

    def nvmlDeviceGetPowerUsage(self, handle) -> int:
        raise NVMLError("Not Supported")

    def nvmlDeviceGetClockInfo(self, handle, kind: int) -> int:
        return 1410
