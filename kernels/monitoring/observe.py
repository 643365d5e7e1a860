"""A monitor watching a training loop on the fake NVML, and the figures its check compares.

:func:`train_watched` runs :class:`kernels.monitoring.trainer.Trainer` under a monitor that
samples :class:`kernels.monitoring.fake_nvml.FakeNVML`: the fake reads busy while a step
computes and idle in the pause after it (loading the next batch), and reports the training's
memory footprint as used. It returns what the monitor recorded beside what the fake NVML
really returned and which threads ran; :func:`expected_summary` is the summary those readings
must give, computed independently of ``GpuMonitor.summary``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any

import torch

from kernels.monitoring.fake_nvml import FakeNVML
from kernels.monitoring.trainer import Trainer
from kernels.monitoring.wrong import halt, new_threads


@dataclasses.dataclass
class Watched:
    """What a monitor did while a model trained under the fake NVML.

    Attributes:
        samples: the monitor's samples (``stop()``'s return value), in order.
        readings: the fake NVML's log, one ``[gpu_pct, mem_pct, used_bytes]`` per reading.
        running: names of the threads ``start()`` started.
        left: names of those threads still alive after ``stop()``.
        steps: training steps run.
        footprint_bytes: the training's last (largest) memory footprint, bytes.
        summary: ``monitor.summary()``; report: ``monitor.report()``.
    """

    samples: list[Any]
    readings: list[list[float]]
    running: list[str]
    left: list[str]
    steps: int
    footprint_bytes: int
    summary: dict[str, float]
    report: str


def train_watched(monitor_cls: type, cfg: Any, device: torch.device, seed: int) -> Watched:
    """Train under ``monitor_cls(nvml=FakeNVML(), interval_s=cfg.interval_s)``.

    Runs at least ``cfg.min_steps`` steps and until 40 intervals have passed, each followed by a
    pause of ``cfg.idle_ms`` ms; the monitor's thread is stopped for sure afterwards.
    """
    fake = FakeNVML()
    run = Trainer(cfg, device, seed)
    before = threading.enumerate()
    mon = monitor_cls(nvml=fake, nvml_index=0, interval_s=cfg.interval_s).start()
    running = new_threads(before)
    t0, steps = time.perf_counter(), 0
    while steps < cfg.min_steps or time.perf_counter() - t0 < 40 * cfg.interval_s:
        fake.busy = True
        run.step()
        fake.mem_used_bytes = run.footprint_bytes()
        fake.busy = False
        time.sleep(cfg.idle_ms / 1e3)
        steps += 1
    samples = mon.stop()
    left = new_threads(before)
    halt(mon)
    names = [t.name for t in running]
    footprint = run.footprint_bytes()
    return Watched(samples, fake.log, names, [t.name for t in left], steps, footprint, mon.summary(), mon.report())


def same_series(samples: list[Any], readings: list[list[float]]) -> bool:
    """The monitor's ``samples`` are exactly the NVML ``readings``, in order (utilisations equal,
    used memory to float rounding: the monitor keeps MB)."""
    series = [[s.gpu_util_pct, s.mem_util_pct, s.mem_used_mb * 1e6] for s in samples]
    return len(series) == len(readings) and all(
        a[:2] == b[:2] and math.isclose(a[2], b[2], rel_tol=1e-12) for a, b in zip(series, readings)
    )


def started_without_gpu(monitor_cls: type, **kw: Any) -> tuple[Any, list[str]]:
    """Start and stop ``monitor_cls(**kw)`` (an NVML that cannot start, or none); returns the
    stopped monitor and the names of the threads ``start()`` left alive (none expected)."""
    before = threading.enumerate()
    mon = monitor_cls(**kw).start()
    started = [t.name for t in new_threads(before)]
    mon.stop()
    halt(mon)
    return mon, started


def expected_summary(samples: list[Any], footprint_bytes: int) -> dict[str, float]:
    """The summary the fake NVML's ``samples`` must give: means, maxima, count, duration, and as
    peak memory the final ``footprint_bytes`` (MB); the fake's SM clock is a constant 1410 MHz and
    it has no power reading, so no power figure."""
    util = [s.gpu_util_pct for s in samples]
    return {
        "gpu_util_mean_pct": sum(util) / len(util),
        "gpu_util_max_pct": max(util),
        "mem_util_mean_pct": sum(s.mem_util_pct for s in samples) / len(samples),
        "mem_used_max_mb": footprint_bytes / 1e6,
        "n_samples": float(len(samples)),
        "duration_s": samples[-1].t_s,
        "sm_clock_mean_mhz": 1410.0,
    }


def summary_mismatch(got: dict[str, float], want: dict[str, float]) -> dict[str, Any]:
    """Figures where ``got`` differs from ``want`` (relative 1e-9), as ``{name: (got, want)}``, and
    under ``"unexpected"`` the names ``got`` has beyond ``want``; {} when they agree."""
    bad: dict[str, Any] = {
        k: (got.get(k), v) for k, v in want.items() if not math.isclose(got.get(k, math.nan), v, rel_tol=1e-9)
    }
    extra = sorted(set(got) - set(want))
    return {**bad, "unexpected": extra} if extra else bad
