"""Wrong GPU monitors: the mutants of deployment.gpu_monitor (each one a plausible mistake),
and the thread bookkeeping its check uses to see them.

Each subclasses ``harness.gpu_monitor.GpuMonitor`` and breaks one promise; the task's check must
catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import threading
import time

from harness.gpu_monitor import GpuMonitor


class BusyLoop(GpuMonitor):
    """WRONG: samples as fast as it can: the interval is ignored."""

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(self.sample_once())


class ThreadWithoutGpu(GpuMonitor):
    """WRONG: starts its thread whether or not NVML found a device."""

    def start(self):
        self.samples, self._t0 = [], time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="GpuMonitor", daemon=True)
        self._thread.start()
        return self


class MaxAsMean(GpuMonitor):
    """WRONG: the summary's mean utilisation is the max."""

    def summary(self):
        out = super().summary()
        if out:
            out["gpu_util_mean_pct"] = out["gpu_util_max_pct"]
        return out


class LeaksThread(GpuMonitor):
    """WRONG: ``stop()`` returns the samples but never stops the thread."""

    def stop(self):
        return list(self.samples)


def new_threads(before: list[threading.Thread]) -> list[threading.Thread]:
    """Threads alive now that were not in ``before`` (a ``threading.enumerate()`` taken earlier)."""
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def halt(mon: GpuMonitor) -> None:
    """Stop a (possibly broken) monitor's thread for sure (join up to 5 s): nothing a check starts
    outlives it."""
    mon._stop.set()
    if mon._thread is not None:
        mon._thread.join(5.0)
