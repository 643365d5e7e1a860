"""9.05 Monitor GPU usage during training.

Compared: a training step of an MLP timed alone, and while ``harness.gpu_monitor.GpuMonitor``
samples NVML (nvidia-ml-py) from a background thread every 10, 50 and 200 ms; on a CPU it reads a
fake NVML (``kernels.monitoring.fake_nvml``) and the bench rows say so: what is timed there is the
thread waking up, not the driver. The check trains under the fake NVML (one thread, ended by
``stop()``; series, interval and summary exact: ``kernels.monitoring.observe``) and on a real GPU
must see the device busy, using at least the memory torch allocated.

Lesson: NVML's "utilisation" is the fraction of its own sample period (1/6 s to 1 s by product) in
which *any* kernel ran (NVML API reference, ``nvmlDeviceGetUtilizationRates``): 100 % says the GPU
was never idle, not that its SMs were full, and sampling faster than that period repeats values. So
a sampler needs no more than tens of milliseconds, and at that rate its cost is a Python thread
waking up: each wake-up takes the GIL, which the training thread gives back within
``sys.getswitchinterval()`` (5 ms by default: Python docs, ``sys.setswitchinterval``), and each
NVML query is a driver call of microseconds. ``nvidia-smi dmon``, built for the job, prints one
line a second unless told otherwise (``-d``, its delay in seconds: ``nvidia-smi dmon -h``). A
monitor that finds no GPU (an NVML that cannot start, or no driver) must not fail the training it
watches, nor leave a thread spinning: it says "no GPU was found", with no figures and no thread.
"""

from __future__ import annotations

import dataclasses
import statistics

import torch

from harness import Prepared, System, task
from harness.claims import time_ratio
from harness.gpu_monitor import NO_GPU, GpuMonitor
from harness.mutants import Mutant
from kernels.monitoring import observe
from kernels.monitoring import wrong as W
from kernels.monitoring.fake_nvml import FakeNVML, NVMLError
from kernels.monitoring.trainer import Trainer


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """The training step and how the check samples it."""

    batch: int = 64
    """samples per step"""
    features: int = 256
    """input features; the MLP is features -> hidden -> 10"""
    hidden: int = 512
    """hidden width"""
    min_steps: int = 20
    """check: steps trained under the monitor (more while under 40 intervals have passed)"""
    interval_s: float = 0.01
    """check: sampling interval, seconds"""
    idle_ms: float = 1.0
    """check: pause between steps (loading the next batch): the fake NVML reads idle there"""
    nvml: str = ""
    """bench rows: 'real' or 'fake' NVML (set by the bench)"""

    def label(self) -> str:
        return f"B={self.batch},H={self.hidden}" + (f",{self.nvml} NVML" if self.nvml else "")


@task("deployment.gpu_monitor", seed="9.05", title="monitor GPU usage during training")
class GpuMonitoring(System):
    __doc__ = __doc__
    variants = ("no_sampler", "sampler_10ms", "sampler_50ms", "sampler_200ms")
    gpu_check = True  # the real-NVML part runs behind ctx.require("cuda", "nvml")
    sizes = {
        "tiny": MonitorConfig(),
        "cpu": MonitorConfig(batch=128, hidden=1024),
        "gpu": MonitorConfig(batch=1024, features=1024, hidden=4096),
    }
    metrics = {
        "gpu_util_mean_pct": "mean utilisation over the samples (fake NVML: % of samples taken mid-step), %",
        "sample_gap_median_ms": "median time between consecutive samples at the check's interval, ms",
    }
    claims = (
        time_ratio("sampler_50ms", to="no_sampler", at_most=1.05, text="a 50 ms sampler adds <= 5 % to a step"),
        time_ratio("sampler_10ms", to="no_sampler", at_most=1.10, text="a 10 ms sampler adds <= 10 % to a step"),
    )
    monitor_cls: type[GpuMonitor] = GpuMonitor
    mutants = (
        Mutant("busy_loop", "the sampler ignores its interval", {"monitor_cls": W.BusyLoop}, match="interval"),
        Mutant("thread_without_gpu", "runs a thread with no GPU", {"monitor_cls": W.ThreadWithoutGpu}, match="thread"),
        Mutant("max_as_mean", "summary's mean is the max", {"monitor_cls": W.MaxAsMean}, match="summary"),
        Mutant("leaks_thread", "stop() leaves the thread running", {"monitor_cls": W.LeaksThread}, match="thread"),
    )

    def check(self, ctx):
        cfg = ctx.configs[0]
        monitors = {"NVML that cannot start": dict(nvml=FakeNVML(init_error=NVMLError("Driver Not Loaded")))}
        monitors |= {} if ctx.has("nvml") else {"this machine (no GPU driver)": {}}
        for what, kw in monitors.items():
            mon, started = observe.started_without_gpu(self.monitor_cls, **kw)
            ctx.expect(not started, f"{what}: started thread(s) {started} without a GPU")
            silent = not mon.available and mon.report().startswith(NO_GPU) and mon.summary() == {}
            ctx.expect(silent, f"{what}: want {NO_GPU!r} and no figures, got {mon.report()!r}", name="no GPU: reported")
            ctx.note(f"{what}: {mon.report()}")
        w = observe.train_watched(self.monitor_cls, cfg, ctx.device, ctx.rng_seed)  # under the fake NVML
        ctx.expect(w.running == ["GpuMonitor"], f"one sampler thread in training, found {w.running}", name="one thread")
        ctx.expect(not w.left, f"thread(s) {w.left} still running after stop()", name="thread stopped")
        ctx.expect(
            observe.same_series(w.samples, w.readings),
            f"series of {len(w.samples)} samples != the {len(w.readings)} NVML readings",
            name="series",
        )
        ts = [s.t_s for s in w.samples]
        ctx.expect(ts == sorted(ts) and len(ts) >= 3, f"sample times not increasing or < 3: {ts[:5]}", name="times")
        ctx.expect(any(s.gpu_util_pct > 0 for s in w.samples), "no sample saw a step computing", name="busy seen")
        gaps = [b - a for a, b in zip(ts[:-2], ts[1:-1])]  # the thread's samples: the last one is stop()'s
        ctx.expect(
            min(gaps) >= 0.8 * cfg.interval_s,
            f"samples {min(gaps) * 1e3:.3f} ms apart at an interval of {cfg.interval_s * 1e3:g} ms",
            name="interval respected",
        )
        ctx.metric("sample_gap_median_ms", statistics.median(gaps) * 1e3)
        bad = observe.summary_mismatch(w.summary, observe.expected_summary(w.samples, w.footprint_bytes))
        ctx.expect(not bad, f"summary (got, want): {bad}", name="summary")
        ctx.metric("gpu_util_mean_pct", w.summary["gpu_util_mean_pct"])
        ctx.note(f"fake NVML, {w.steps} steps: {w.report}")
        if ctx.require("cuda", "nvml", part="sampling a real GPU while it trains"):
            self._real_gpu(ctx, cfg)

    def _real_gpu(self, ctx, cfg):
        run = Trainer(cfg, ctx.device, ctx.rng_seed)
        with self.monitor_cls(ctx.device.index or 0, interval_s=0.05) as mon:
            run.run_for(2.0)  # > NVML's longest sample period (1 s)
        sm = mon.summary()
        ctx.expect(mon.available and sm.get("n_samples", 0) >= 5, f"real NVML: {mon.report()}", name="real samples")
        ctx.expect(sm["gpu_util_max_pct"] > 0, f"the GPU trained but NVML saw it idle: {mon.report()}", name="busy")
        alloc = torch.cuda.memory_allocated(ctx.device) / 1e6
        ctx.expect(sm["mem_used_max_mb"] >= alloc, f"NVML {sm['mem_used_max_mb']:.0f} MB < torch's {alloc:.0f} MB")
        ctx.note(f"real NVML: {mon.report()}")
        mon.close()

    def prepare(self, ctx, impl, config):
        run = Trainer(config, ctx.device, ctx.rng_seed)
        if impl == "no_sampler":
            return Prepared(fn=run.step, items=config.batch, item_unit="samples")
        interval = int(impl.removeprefix("sampler_").removesuffix("ms")) / 1e3
        nvml = {} if config.nvml == "real" else {"nvml": FakeNVML(), "nvml_index": 0}
        mon = self.monitor_cls(ctx.device.index or 0, interval_s=interval, **nvml).start()
        return Prepared(fn=run.step, items=config.batch, item_unit="samples", teardown=mon.close)

    def bench(self, ctx):
        real = ctx.has("cuda", "nvml")
        if not real:
            ctx.note("no GPU: the sampler reads the fake NVML; the rows time a thread waking, not driver calls")
        ctx.configs = [dataclasses.replace(c, nvml="real" if real else "fake") for c in ctx.configs]
        super().bench(ctx)
