"""9.05 gpu_monitor: the no-GPU path starts no thread, a fake NVML checks series, interval and
summary (its 4 mutants: test_mutants.py); the bench labels fake-NVML rows and leaves no thread.
"""

import threading

import pytest

from harness import REGISTRY, capabilities
from harness.context import Context
from harness.gpu_monitor import NO_GPU, GpuMonitor
from harness.testing import run_check
from kernels.monitoring.fake_nvml import FakeNVML, NVMLError

Task = REGISTRY.get("deployment.gpu_monitor")


def _sampler_threads():
    return [t for t in threading.enumerate() if t.name == "GpuMonitor"]


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"no GPU: reported", "one thread", "thread stopped", "series", "interval respected", "summary"} <= set(
        rec.checks
    )
    assert rec.metrics["sample_gap_median_ms"] >= 8.0  # the check samples every 10 ms
    assert 0 < rec.metrics["gpu_util_mean_pct"] < 100  # the fake is busy in steps, idle between them
    assert _sampler_threads() == []


@pytest.mark.skipif(not capabilities.missing(["nvml"]), reason="this machine has an NVML driver")
def test_this_machine_reports_no_gpu_and_starts_no_thread():
    before = set(threading.enumerate())
    mon = GpuMonitor(interval_s=0.01).start()
    assert set(threading.enumerate()) == before
    assert mon.stop() == [] and mon.report().startswith(NO_GPU) and mon.summary() == {}


def test_fake_nvml_logs_each_reading_in_order():
    fake = FakeNVML()
    mon = GpuMonitor(nvml=fake, nvml_index=0)
    fake.mem_used_bytes, fake.busy = 2_000_000, True
    a = mon.sample_once()
    fake.mem_used_bytes, fake.busy = 5_000_000, False
    b = mon.sample_once()
    assert fake.log == [[100.0, 25.0, 2e6], [0.0, 0.0, 5e6]]
    assert (a.gpu_util_pct, a.mem_used_mb, b.gpu_util_pct, b.mem_used_mb) == (100.0, 2.0, 0.0, 5.0)
    assert a.power_w is None and a.sm_clock_mhz == 1410.0  # power "Not Supported": omitted, not zero
    assert mon.name == "Fake GPU (NVML stand-in)"
    mon.close()
    assert fake.inits == fake.shutdowns == 1


def test_fake_nvml_failures_are_no_gpu():
    mon = GpuMonitor(nvml=FakeNVML(init_error=NVMLError("Driver Not Loaded")))
    assert not mon.available and "Driver Not Loaded" in mon.reason
    mon = GpuMonitor(nvml=FakeNVML(count=0), nvml_index=0)
    assert not mon.available and mon.reason.startswith(NO_GPU)


def test_bench_runs_tiny_and_stops_its_samplers():
    ctx = Context(Task, mode="bench", size="tiny", min_run_time_s=0.05)
    Task().bench(ctx)
    assert [m["impl"] for m in ctx.record.measurements] == list(Task.variants)
    if capabilities.missing(["cuda", "nvml"]):
        assert all(m["config"].endswith("fake NVML") for m in ctx.record.measurements)
        assert "fake NVML" in ctx.record.notes[0]
    assert _sampler_threads() == []
