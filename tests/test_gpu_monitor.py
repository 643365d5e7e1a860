"""harness.gpu_monitor: the no-GPU path, and sampling/summary logic against a fake NVML."""

import threading
import time
from types import SimpleNamespace

import pytest

from harness.gpu_monitor import NO_GPU, GpuMonitor


class NVMLError(Exception):
    pass


class FakeNVML:
    """Enough of pynvml for the monitor: scripted utilizations, optional power failures."""

    NVML_CLOCK_SM = 1

    def __init__(self, utils=(10, 50, 90), count=1, power=True, init_error=None, fail_every=0):
        self.utils, self.count, self.power, self.init_error = list(utils), count, power, init_error
        self.fail_every = fail_every
        self.reads = 0
        self.inits = self.shutdowns = 0
        self.lock = threading.Lock()

    def nvmlInit(self):
        if self.init_error:
            raise self.init_error
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("handle", i)

    def nvmlDeviceGetName(self, h):
        return b"Fake H200"

    def nvmlDeviceGetUtilizationRates(self, h):
        with self.lock:
            self.reads += 1
            k = self.reads
        if self.fail_every and k % self.fail_every == 0:
            raise NVMLError("GPU is lost")
        return SimpleNamespace(gpu=self.utils[(k - 1) % len(self.utils)], memory=20)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=3_000_000_000, total=141_000_000_000)

    def nvmlDeviceGetPowerUsage(self, h):
        if not self.power:
            raise NVMLError("Not Supported")
        return 350_000  # milliwatts

    def nvmlDeviceGetClockInfo(self, h, kind):
        assert kind == self.NVML_CLOCK_SM
        return 1980


def test_this_machine_without_gpu_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    mon = GpuMonitor()
    assert not mon.available and mon.reason.startswith(NO_GPU)
    with mon:
        pass
    assert mon.summary() == {} and mon.report().startswith(NO_GPU)


def test_nvml_start_failure_and_no_device_are_no_gpu():
    mon = GpuMonitor(nvml=FakeNVML(init_error=NVMLError("Driver Not Loaded")))
    assert not mon.available and "Driver Not Loaded" in mon.reason and mon.reason.startswith(NO_GPU)
    fake = FakeNVML(count=0)
    mon = GpuMonitor(nvml=fake, nvml_index=0)
    assert not mon.available and "0 device" in mon.reason and fake.shutdowns == 1


def test_samples_are_collected_in_the_background():
    fake = FakeNVML()
    with GpuMonitor(nvml_index=0, interval_s=0.005, nvml=fake) as mon:
        deadline = time.time() + 5
        while len(mon.samples) < 5 and time.time() < deadline:
            time.sleep(0.01)
    n = len(mon.samples)
    assert n >= 6  # >= 5 from the thread plus the final reading at stop()
    time.sleep(0.05)
    assert len(mon.samples) == n, "sampling went on after stop()"
    s = mon.samples[0]
    assert s.mem_used_mb == 3000.0 and s.power_w == 350.0 and s.sm_clock_mhz == 1980.0
    assert all(b.t_s >= a.t_s for a, b in zip(mon.samples, mon.samples[1:]))


def test_summary_arithmetic_on_known_samples():
    fake = FakeNVML(utils=(10, 50, 90))
    mon = GpuMonitor(nvml_index=0, nvml=fake)
    mon.samples = [mon.sample_once() for _ in range(3)]
    sm = mon.summary()
    assert sorted(x.gpu_util_pct for x in mon.samples) == [10, 50, 90]
    assert sm["gpu_util_mean_pct"] == pytest.approx(50.0) and sm["gpu_util_max_pct"] == 90
    assert sm["mem_util_mean_pct"] == 20 and sm["mem_used_max_mb"] == 3000 and sm["n_samples"] == 3
    assert sm["power_mean_w"] == 350 and sm["sm_clock_mean_mhz"] == 1980
    assert "Fake H200: GPU busy 50% (mean), 90% (max)" in mon.report()


def test_unsupported_power_is_omitted_and_failed_readings_counted():
    fake = FakeNVML(power=False, fail_every=2)
    with GpuMonitor(nvml_index=0, interval_s=0.002, nvml=fake) as mon:
        deadline = time.time() + 5
        while mon.errors < 2 and time.time() < deadline:
            time.sleep(0.01)
    assert mon.errors >= 2 and "GPU is lost" in mon.last_error
    assert all(s.power_w is None for s in mon.samples)
    assert "power_mean_w" not in mon.summary() and "readings failed" in mon.report()


def test_close_releases_nvml_and_double_start_is_refused():
    fake = FakeNVML()
    mon = GpuMonitor(nvml_index=0, interval_s=0.01, nvml=fake).start()
    with pytest.raises(RuntimeError, match="already running"):
        mon.start()
    mon.close()
    assert fake.shutdowns == fake.inits == 1 and not mon.available


def test_bad_interval():
    with pytest.raises(ValueError, match="interval_s"):
        GpuMonitor(interval_s=0, nvml=FakeNVML())
