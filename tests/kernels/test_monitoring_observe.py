"""kernels.monitoring.observe: the series comparison, the summary diff (a figure too many counts),
and a monitor that starts no thread without a GPU; kernels.monitoring.trainer.Trainer.run_for."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from harness.gpu_monitor import GpuMonitor
from kernels.monitoring import observe
from kernels.monitoring.fake_nvml import FakeNVML, NVMLError
from kernels.monitoring.trainer import Trainer


def _sample(gpu, mem, used_mb, t):
    return SimpleNamespace(gpu_util_pct=gpu, mem_util_pct=mem, mem_used_mb=used_mb, t_s=t)


def test_same_series_needs_every_reading_in_order():
    samples = [_sample(100.0, 25.0, 2.0, 0.1), _sample(0.0, 0.0, 5.0, 0.2)]
    assert observe.same_series(samples, [[100.0, 25.0, 2e6], [0.0, 0.0, 5e6]])
    assert not observe.same_series(samples, [[0.0, 0.0, 5e6], [100.0, 25.0, 2e6]])
    assert not observe.same_series(samples[:1], [[100.0, 25.0, 2e6], [0.0, 0.0, 5e6]])


def test_expected_summary_and_mismatch():
    samples = [_sample(100.0, 25.0, 2.0, 0.1), _sample(0.0, 0.0, 5.0, 0.3)]
    want = observe.expected_summary(samples, footprint_bytes=5_000_000)
    assert want["gpu_util_mean_pct"] == 50.0 and want["mem_used_max_mb"] == 5.0 and want["duration_s"] == 0.3
    assert observe.summary_mismatch(dict(want), want) == {}
    got = {**want, "gpu_util_mean_pct": 100.0, "power_mean_w": 70.0}
    assert observe.summary_mismatch(got, want) == {"gpu_util_mean_pct": (100.0, 50.0), "unexpected": ["power_mean_w"]}


def test_no_gpu_starts_no_thread():
    mon, started = observe.started_without_gpu(GpuMonitor, nvml=FakeNVML(init_error=NVMLError("Driver Not Loaded")))
    assert started == [] and not mon.available


def test_run_for_trains_until_the_time_is_up():
    run = Trainer(SimpleNamespace(batch=4, features=8, hidden=8), torch.device("cpu"), 0)
    assert run.run_for(0.05) >= 1
