"""The one timer of the harness.

* CPU: ``torch.utils.benchmark.Timer.blocked_autorange`` picks how many calls make one
  block (so each sample is well above timer resolution) and runs blocks until
  ``min_run_time_s`` has passed; each block's mean per-call time is one raw sample.
  The Timer is given a clock of ours (its public ``timer=`` argument) that reads, next
  to the wall clock, the CPU time of this process (all threads, ``time.process_time``)
  and, where Linux offers it, the run-queue delay of every thread
  (``/proc/self/task/*/schedstat``, field 2: nanoseconds spent runnable but not
  running). So every block carries the CPU time it actually received.
* CUDA: CUDA events around each call after warm-up. In cold-L2 mode (the default) a
  buffer twice the L2 size is overwritten before every sample so the call starts from
  HBM, as it would in a real model between layers; warm-L2 mode skips the flush.
  Events of all samples are read after a single synchronize, so the host never stalls
  the queue between samples. Host overhead is the wall-clock time per call (host clock
  around one synchronised call) minus the device time.
* CUDA-graph replay is its own mode (``graph``, warm L2; ``graph-cold`` flushes L2
  before every replay): the call is captured once and the graph replayed.

Contention (a shared machine). Google Benchmark reports real time next to CPU time
for the same reason: a block that lost the CPU to another process shows CPU time short
of wall time. For sample *i* with wall time ``w`` and process CPU time ``c`` the
parallelism is ``c / w`` (cores busy on average) and the recorded ``cpu_ratio`` is
``c / (w * threads)``. A sample is **preempted** when

* its parallelism is below :data:`PREEMPT_RATIO` (0.9) times the parallelism this
  callable reaches, ``P = clamp(90th percentile of c/w over its samples, 1, threads)``.
  A CPU-bound call keeps at least its calling thread busy, so ``P >= 1``; with one
  thread the rule is simply ``c < 0.9 w``. Why 0.9: quiet, a CPU-bound block here gets
  0.98-1.00 of its wall time (timer interrupts, kernel threads), and a block that kept
  the CPU for 90 % of its wall time is inflated by at most 1/0.9 - 1 = 11 %, the size
  of the noise flag (10 %) and of the timer self-test's target; or
* its threads spent more than :data:`RUNQUEUE_SHARE` (10 %) of its wall time waiting
  in a run queue (schedstat). This catches what CPU time cannot: an OpenMP worker
  descheduled while the calling thread spins at the barrier (the spinning is CPU time).

Work that waits by design (a server round trip, a data loader, a process group, a GPU
synchronisation) has CPU time far below wall time without losing the CPU:
``measure(..., waits=True)`` ignores the CPU ratio and judges each sample by run-queue
delay, else (no schedstat) by CPU pressure (``/proc/pressure/cpu`` "some": the share of
the sample during which some task waited for a CPU) above 10 %. Over the whole
measurement the CPU pressure share and the steal share (``/proc/stat``: time the
hypervisor gave this VM's CPUs to others) are recorded; steal above
:data:`STEAL_SHARE` makes the measurement contended.

Median, IQR and min are taken over the clean (not preempted) samples; every raw sample
is kept with its CPU ratio and preemption flag. Fewer than :data:`MIN_CLEAN_SAMPLES`
(5) clean samples make the measurement ``contended``: its median is not precise
(fewer than 5 samples at all is always contended). So does a preempted share above
:data:`MAX_PREEMPTED_SHARE` (25 %): CPU time shows when a neighbour took the CPU, not
when it shared the caches and memory bandwidth while we ran, and neighbours that active
do both (quiet, under 5 % of samples are preempted here). Before giving up, the timer adds
blocks (as pyperf adds values) while the extra time stays within
:data:`MAX_RUN_FACTOR` times ``min_run_time_s``.

A clean sample set with IQR/median above :data:`NOISE_THRESHOLD` carries
``noisy=True`` and a warning, because a difference smaller than that spread is noise
(METHOD: "time the same version twice"); pyperf warns likewise when its spread is large.

Run-record fields of a measurement (old records lack the new ones: read them as
unknown): ``median_ms``, ``iqr_ms``, ``min_ms`` (clean samples), ``n_samples``,
``number_per_sample``, ``mode``, ``noisy``, ``samples_ms`` (all, thinned to
:data:`MAX_SAMPLES_KEPT`), and new: ``n_preempted`` (None when unknown), ``contended``,
``contended_reason``, ``cpu_wall_ratio`` (median cpu_ratio), ``cpu_ratios`` and
``preempted`` (aligned with ``samples_ms``), ``threads``, ``waits`` (only when true),
``cpu_pressure`` and ``steal`` (shares of the measurement's wall time, where the kernel
offers them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.utils.benchmark as tbench

#: IQR / median above which a measurement is flagged noisy (DESIGN.md: 10%).
NOISE_THRESHOLD = 0.10
#: Most raw samples kept in a run record per measurement (run records stay compact).
MAX_SAMPLES_KEPT = 64
#: A sample is preempted when its parallelism falls below this share of the callable's own.
PREEMPT_RATIO = 0.9
#: ... or when its threads waited in a run queue (or, for ``waits``, under CPU pressure)
#: for more than this share of its wall time.
RUNQUEUE_SHARE = 0.10
#: Steal share of the measurement above which it is contended (the VM lost its CPUs). Where
#: the kernel counts stolen time as the process's own, the CPU ratio cannot see it, and 5 %
#: is the smallest change ``drills compare`` calls.
STEAL_SHARE = 0.05
#: Share of preempted samples above which the clean ones are not trusted either: the
#: neighbours that took the CPU that often also shared the caches and memory bandwidth
#: while we ran (measured here: at load 6-18 on 2 cores, clean medians of memory-bound calls
#: drifted 25-56 % between runs whenever a third or more of their samples were preempted).
MAX_PREEMPTED_SHARE = 0.25
#: Fewer clean samples than this make a measurement contended (never reported as precise).
MIN_CLEAN_SAMPLES = 5
#: Top-up blocks may run until this multiple of ``min_run_time_s`` has been spent.
MAX_RUN_FACTOR = 3.0


#: The CPU clock of the measuring process, all threads (seconds). A module attribute so a
#: test can stand in an idle CPU (CPU time = wall time) on a machine that has none.
_cpu_time: Callable[[], float] = time.process_time


class NoisyMeasurementWarning(UserWarning):
    """IQR/median of a measurement exceeded :data:`NOISE_THRESHOLD`."""


class ContendedMeasurementWarning(NoisyMeasurementWarning):
    """Fewer than :data:`MIN_CLEAN_SAMPLES` clean samples (a subclass, so filters of noise catch it)."""


@dataclasses.dataclass
class Measurement:
    """Summary and raw samples of one timed callable; all times in milliseconds.

    Attributes:
        samples_ms: per-call time of each sample (a CPU block's mean, or one CUDA call),
            preempted ones included.
        number_per_sample: calls averaged in one sample (1 on CUDA).
        mode: ``cpu``, ``cuda-cold-l2``, ``cuda-warm-l2``, ``cuda-graph``,
            ``cuda-graph-cold-l2`` or a caller's label (``external``).
        host_overhead_ms: wall time per call minus device time (CUDA modes only).
        cpu_ratios: per sample, process CPU time / (wall time x threads); None when not measured.
        preempted: per sample, True when it lost the CPU (module docstring); None = unknown.
        threads: intra-op threads the callable ran with.
        waits: the callable waits by design; preemption was judged without the CPU ratio.
        cpu_pressure: share of the measurement's wall time some task waited for a CPU
            (``/proc/pressure/cpu`` "some"); None where the kernel lacks PSI.
        steal: share of all CPU time stolen by the hypervisor during the measurement
            (``/proc/stat``); None where unavailable.
    """

    samples_ms: list[float]
    number_per_sample: int
    mode: str
    host_overhead_ms: float | None = None
    cpu_ratios: list[float] | None = None
    preempted: list[bool] | None = None
    threads: int | None = None
    waits: bool = False
    cpu_pressure: float | None = None
    steal: float | None = None

    @property
    def clean_samples_ms(self) -> list[float]:
        """Samples not marked preempted (all samples when preemption is unknown)."""
        if self.preempted is None:
            return list(self.samples_ms)
        return [s for s, p in zip(self.samples_ms, self.preempted) if not p]

    @property
    def _summary_samples(self) -> list[float]:
        return self.clean_samples_ms or list(self.samples_ms)  # all preempted: summarise all, contended

    @property
    def n_preempted(self) -> int | None:
        return None if self.preempted is None else sum(self.preempted)

    @property
    def median_ms(self) -> float:
        """Median of the clean samples (ms)."""
        return statistics.median(self._summary_samples)

    @property
    def iqr_ms(self) -> float:
        s = self._summary_samples
        if len(s) < 4:
            return max(s) - min(s)
        q = statistics.quantiles(s, n=4, method="inclusive")
        return q[2] - q[0]

    @property
    def min_ms(self) -> float:
        return min(self._summary_samples)

    @property
    def noise(self) -> float:
        """IQR / median of the clean samples (dimensionless)."""
        m = self.median_ms
        return self.iqr_ms / m if m > 0 else 0.0

    @property
    def noisy(self) -> bool:
        return self.noise > NOISE_THRESHOLD

    @property
    def cpu_wall_ratio(self) -> float | None:
        """Median over all samples of CPU time / (wall time x threads); None when not measured."""
        return statistics.median(self.cpu_ratios) if self.cpu_ratios else None

    @property
    def contended_reason(self) -> str:
        """Why the measurement is not precise ("" when it is)."""
        n, clean = len(self.samples_ms), len(self.clean_samples_ms)
        if self.steal is not None and self.steal > STEAL_SHARE:
            return f"the hypervisor stole {self.steal:.0%} of the CPU time (> {STEAL_SHARE:.0%})"
        if n and (n - clean) / n > MAX_PREEMPTED_SHARE:
            return (
                f"{n - clean} of {n} samples preempted (> {MAX_PREEMPTED_SHARE:.0%}): the clean ones ran "
                "beside the same neighbours"
            )
        if clean >= MIN_CLEAN_SAMPLES:
            return ""
        if clean == n:
            return f"only {n} sample(s) (< {MIN_CLEAN_SAMPLES}); give it a longer --min-run-time"
        return f"{n - clean} of {n} samples preempted: {clean} clean (< {MIN_CLEAN_SAMPLES})"

    @property
    def contended(self) -> bool:
        return bool(self.contended_reason)

    def to_json(self) -> dict[str, Any]:
        idx = list(range(len(self.samples_ms)))
        if len(idx) > MAX_SAMPLES_KEPT:  # keep an even spread, first and last included
            step = (len(idx) - 1) / (MAX_SAMPLES_KEPT - 1)
            idx = [round(i * step) for i in range(MAX_SAMPLES_KEPT)]
        d: dict[str, Any] = {
            "median_ms": _sig(self.median_ms),
            "iqr_ms": _sig(self.iqr_ms),
            "min_ms": _sig(self.min_ms),
            "n_samples": len(self.samples_ms),
            "n_preempted": self.n_preempted,
            "number_per_sample": self.number_per_sample,
            "mode": self.mode,
            "noisy": self.noisy,
            "contended": self.contended,
            "cpu_wall_ratio": None if self.cpu_wall_ratio is None else _sig(self.cpu_wall_ratio, 3),
            "threads": self.threads,
            "samples_ms": [_sig(self.samples_ms[i]) for i in idx],
        }
        if self.contended:
            d["contended_reason"] = self.contended_reason
        if self.cpu_ratios is not None:
            d["cpu_ratios"] = [_sig(self.cpu_ratios[i], 3) for i in idx]
        if self.preempted is not None:
            d["preempted"] = [bool(self.preempted[i]) for i in idx]
        if self.waits:
            d["waits"] = True
        for k in ("cpu_pressure", "steal"):
            v = getattr(self, k)
            if v is not None:
                d[k] = _sig(v, 3)
        if self.host_overhead_ms is not None:
            d["host_overhead_ms"] = _sig(self.host_overhead_ms)
        return d


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- what the kernel says about contention --------------------------------------------------


def read_cpu_pressure_us() -> float | None:
    """Total microseconds some task waited for a CPU (``/proc/pressure/cpu`` "some total"); None without PSI."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some"):
                    return float(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        pass
    return None


def read_steal() -> tuple[int, int] | None:
    """(steal jiffies, all jiffies) summed over CPUs from ``/proc/stat``; None where unavailable."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        if fields[0] != "cpu" or len(fields) < 9:
            return None
        vals = [int(v) for v in fields[1:]]
        return vals[7], sum(vals[:8])  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError, IndexError):
        return None


class _RunQueue:
    """Run-queue delay (seconds) summed over this process's threads, from schedstat.

    The files are opened once (after warm-up, when the thread pool exists) and re-read
    with ``pread`` so one reading costs microseconds. ``available`` is False where
    the kernel has no schedstat (non-Linux, CONFIG_SCHED_INFO off).
    """

    def __init__(self) -> None:
        self.fds: list[int] = []
        try:
            for tid in os.listdir("/proc/self/task"):
                with contextlib.suppress(OSError):
                    self.fds.append(os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY))
        except OSError:
            pass
        self.available = bool(self.fds) and self.read() is not None

    def read(self) -> float | None:
        tot = 0
        try:
            for fd in self.fds:
                tot += int(os.pread(fd, 128, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return tot * 1e-9

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []


class _ContentionClock:
    """A clock for ``torch.utils.benchmark.Timer(timer=...)`` that notes CPU time too.

    ``timeit`` calls the clock exactly twice per block (before and after its loop), so
    calls alternate start / end. Reads other than the wall clock sit outside the timed
    interval: at a start they come before the wall clock, at an end after it.
    """

    def __init__(self, runqueue: _RunQueue | None, pressure: bool) -> None:
        self.rq = runqueue
        self.pressure = pressure
        self.starts: list[tuple[float, float, float | None, float | None]] = []
        self.ends: list[tuple[float, float, float | None, float | None]] = []

    def __call__(self) -> float:
        if len(self.starts) == len(self.ends):
            p = read_cpu_pressure_us() if self.pressure else None
            q = self.rq.read() if self.rq else None
            c = _cpu_time()
            w = time.perf_counter()
            self.starts.append((w, c, q, p))
        else:
            w = time.perf_counter()
            c = _cpu_time()
            q = self.rq.read() if self.rq else None
            p = read_cpu_pressure_us() if self.pressure else None
            self.ends.append((w, c, q, p))
        return w

    def blocks(self, k: int) -> list[tuple[float, float, float | None, float | None]]:
        """(wall s, cpu s, run-queue s, pressure us) of the last ``k`` blocks."""
        out = []
        for (w0, c0, q0, p0), (w1, c1, q1, p1) in zip(self.starts[-k:], self.ends[-k:]):
            out.append(
                (
                    w1 - w0,
                    c1 - c0,
                    None if q0 is None or q1 is None else q1 - q0,
                    None if p0 is None or p1 is None else p1 - p0,
                )
            )
        return out


def judge_samples(
    walls_s: list[float],
    cpus_s: list[float],
    runqueue_s: list[float | None],
    pressure_us: list[float | None],
    *,
    threads: int,
    waits: bool,
) -> tuple[list[float], list[bool]]:
    """(cpu_ratios, preempted) per sample, by the rules of the module docstring.

    Args:
        walls_s, cpus_s: wall and process CPU seconds of each sample.
        runqueue_s: run-queue delay of all threads per sample (None: unknown).
        pressure_us: CPU-pressure "some" microseconds per sample (None: unknown).
        threads: intra-op threads (>= 1).
        waits: the work waits by design: the CPU ratio is not evidence.
    """
    par = [c / w if w > 0 else 0.0 for w, c in zip(walls_s, cpus_s)]
    ratios = [p / threads for p in par]
    if not par:
        return ratios, []
    hi = sorted(par)[min(len(par) - 1, int(0.9 * len(par)))]
    expected = min(max(hi, 1.0), float(threads))
    preempted = []
    for i, w in enumerate(walls_s):
        q, p = runqueue_s[i], pressure_us[i]
        queued = q is not None and w > 0 and q / w > RUNQUEUE_SHARE
        if waits:
            pressed = q is None and p is not None and w > 0 and p * 1e-6 / w > RUNQUEUE_SHARE
            preempted.append(queued or pressed)
        else:
            preempted.append(queued or par[i] < PREEMPT_RATIO * expected)
    return ratios, preempted


@contextlib.contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (None: leave as is), then restore."""
    if n is None:
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def available_cores() -> int:
    """Cores this process may run on (affinity), else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_notice(threads: int) -> str | None:
    """A line for the start of a run when other work leaves fewer idle cores than ``threads``; else None."""
    if not hasattr(os, "getloadavg"):
        return None
    load, cores = os.getloadavg()[0], available_cores()
    idle = max(0.0, cores - load)
    if idle >= threads:
        return None
    return (
        f"load {load:.1f} on {cores} cores ({idle:.1f} idle, benchmarks use {threads} thread(s)): "
        f"samples that lose the CPU are dropped as preempted, and a measurement with fewer than "
        f"{MIN_CLEAN_SAMPLES} clean samples or over {MAX_PREEMPTED_SHARE:.0%} preempted is marked contended"
    )


def contention_summary(entries: Any) -> str | None:
    """One line on the contended and noisy rows of run-record task entries; None when all are clean.

    Rows without a ``contended`` field (older records) count as unknown and are left out.
    """
    rows = [m for e in entries for m in (e.get("measurements") or []) if isinstance(m, dict)]
    known = [m for m in rows if "contended" in m]
    if not known:
        return None
    bad = sum(bool(m["contended"]) for m in known)
    noisy = sum(bool(m.get("noisy")) and not m["contended"] for m in known)
    if not bad and not noisy:
        return None
    return (
        f"{bad} of {len(known)} measurements contended (machine busy: not precise, never called regressions), "
        f"{noisy} more noisy (IQR/median > {NOISE_THRESHOLD:.0%})"
    )


def time_cpu(
    fn: Callable[[], Any],
    *,
    min_run_time_s: float = 0.5,
    warmup: int = 1,
    threads: int | None = None,
    waits: bool = False,
) -> Measurement:
    """Time ``fn`` on the CPU with ``torch.utils.benchmark`` (blocked autorange) and judge each block.

    Args:
        fn: zero-argument callable; allocation and compilation belong outside it.
        min_run_time_s: seconds of measurement (seconds, not calls); top-up blocks for
            too few clean samples may add up to ``MAX_RUN_FACTOR`` times this.
        warmup: untimed calls first (caches, lazy init, the OpenMP pool).
        threads: intra-op threads (default: ``torch.get_num_threads()``).
        waits: ``fn`` waits by design (I/O, another process, a GPU): judge preemption by
            run-queue delay and CPU pressure, not by CPU time.
    """
    threads = threads or torch.get_num_threads()
    with intra_op_threads(threads):
        for _ in range(warmup):
            fn()
    rq = _RunQueue()
    clock = _ContentionClock(rq if rq.available else None, pressure=waits)
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, timer=clock)
    psi0, steal0, t0 = read_cpu_pressure_us(), read_steal(), time.perf_counter()
    samples: list[float] = []
    blocks: list[tuple[float, float, float | None, float | None]] = []
    number = 1
    try:
        run_time = min_run_time_s
        for _ in range(4):  # the first round and at most three top-ups
            m = timer.blocked_autorange(min_run_time=run_time)
            number = m.number_per_run
            samples += [t * 1e3 for t in m.times]
            blocks += clock.blocks(len(m.raw_times))
            _, pre = judge_samples(
                [b[0] for b in blocks],
                [b[1] for b in blocks],
                [b[2] for b in blocks],
                [b[3] for b in blocks],
                threads=threads,
                waits=waits,
            )
            missing = MIN_CLEAN_SAMPLES - (len(pre) - sum(pre))
            spent = time.perf_counter() - t0
            block_s = statistics.median(b[0] for b in blocks)
            # pyperf adds values until it has enough; here only while it stays cheap
            run_time = max(missing * block_s * 1.5, min_run_time_s / 10)
            if missing <= 0 or spent + run_time + block_s > MAX_RUN_FACTOR * min_run_time_s:
                break
    finally:
        rq.close()
    wall = time.perf_counter() - t0
    psi1, steal1 = read_cpu_pressure_us(), read_steal()
    ratios, preempted = judge_samples(
        [b[0] for b in blocks],
        [b[1] for b in blocks],
        [b[2] for b in blocks],
        [b[3] for b in blocks],
        threads=threads,
        waits=waits,
    )
    steal = None
    if steal0 and steal1 and steal1[1] > steal0[1]:
        steal = (steal1[0] - steal0[0]) / (steal1[1] - steal0[1])
    return Measurement(
        samples_ms=samples,
        number_per_sample=number,
        mode="cpu",
        cpu_ratios=ratios,
        preempted=preempted,
        threads=threads,
        waits=waits,
        cpu_pressure=None if psi0 is None or psi1 is None else min(1.0, (psi1 - psi0) * 1e-6 / wall),
        steal=steal,
    )


_L2_FLUSH: dict[int, torch.Tensor] = {}


def _l2_flush_buffer(device: torch.device) -> torch.Tensor:
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _L2_FLUSH:
        l2 = getattr(torch.cuda.get_device_properties(idx), "L2_cache_size", 50 * 2**20) or 50 * 2**20
        # Twice the L2 (H200: 2 x 50 MiB) so no line of the previous sample survives.
        _L2_FLUSH[idx] = torch.empty(2 * l2 // 4, dtype=torch.int32, device=device)
    return _L2_FLUSH[idx]


def time_cuda(
    fn: Callable[[], Any],
    *,
    device: torch.device | str = "cuda",
    cold_l2: bool = True,
    min_run_time_s: float = 0.5,
    warmup: int = 3,
    max_samples: int = 1000,
) -> Measurement:
    """Time ``fn`` on a CUDA device with events, one event pair per call.

    Device time is not shortened by a busy host, so samples are not judged preempted
    (``preempted`` stays unknown); the CPU pressure and steal over the measurement are
    recorded, and fewer than 5 samples is contended as on the CPU.

    Args:
        cold_l2: overwrite a 2x-L2 buffer before each sample (its cost is outside the
            events) so each call starts with a cold L2.
        min_run_time_s: target total measured device time in seconds.
    """
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    _sync(device)
    flush = _l2_flush_buffer(device) if cold_l2 else None
    psi0, steal0, t_start = read_cpu_pressure_us(), read_steal(), time.perf_counter()
    # Estimate one call to choose the sample count.
    t0 = time.perf_counter()
    fn()
    _sync(device)
    est = max(time.perf_counter() - t0, 1e-6)
    n = int(min(max_samples, max(10, min_run_time_s / est)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        if flush is not None:
            flush.zero_()
        starts[i].record()
        fn()
        ends[i].record()
    _sync(device)
    samples = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    # Host overhead: wall clock of synchronised single calls minus device time.
    walls = []
    for _ in range(min(n, 20)):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        walls.append((time.perf_counter() - t0) * 1e3)
    wall = time.perf_counter() - t_start
    psi1, steal1 = read_cpu_pressure_us(), read_steal()
    m = Measurement(samples_ms=samples, number_per_sample=1, mode="cuda-cold-l2" if cold_l2 else "cuda-warm-l2")
    m.host_overhead_ms = max(0.0, statistics.median(walls) - m.median_ms)
    if psi0 is not None and psi1 is not None:
        m.cpu_pressure = min(1.0, (psi1 - psi0) * 1e-6 / wall)
    if steal0 and steal1 and steal1[1] > steal0[1]:
        m.steal = (steal1[0] - steal0[0]) / (steal1[1] - steal0[1])
    return m


def time_cuda_graph(
    fn: Callable[[], Any],
    *,
    device: torch.device | str = "cuda",
    min_run_time_s: float = 0.5,
    warmup: int = 3,
    cold_l2: bool = False,
) -> Measurement:
    """Capture ``fn`` into a CUDA graph once and time its replays.

    ``fn`` must be capturable: static shapes, no host synchronisation, no new
    allocations that outlive the capture (PyTorch docs, "CUDA Graphs").

    Args:
        cold_l2: flush L2 (outside the events) before every replay, as the cold-L2 eager
            mode does, so graph and eager figures of a memory-bound call compare alike.
    """
    device = torch.device(device)
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):  # warm-up on a side stream, as the docs require
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    m = time_cuda(graph.replay, device=device, cold_l2=cold_l2, min_run_time_s=min_run_time_s, warmup=warmup)
    m.mode = "cuda-graph-cold-l2" if cold_l2 else "cuda-graph"
    return m


def compare_with_do_bench(
    fn: Callable[[], Any], *, device: torch.device | str = "cuda", min_run_time_s: float = 0.5
) -> dict[str, float]:
    """Time ``fn`` with the harness's cold-L2 event timer and with ``triton.testing.do_bench``.

    ``do_bench`` also clears the L2 before every call (it zeroes a 256 MB buffer) and
    returns the median in ms with ``return_mode="median"``, so the two should agree
    within a few per cent; a larger gap points at one of the timers.

    Returns:
        ``{"harness_ms", "do_bench_ms", "ratio"}`` (ratio = harness / do_bench).

    Raises:
        RuntimeError: no CUDA device or no Triton here (this is a GPU-only check).
    """
    if not torch.cuda.is_available():
        raise RuntimeError("compare_with_do_bench needs a CUDA device; this machine has none")
    try:
        from triton.testing import do_bench
    except ImportError as e:
        raise RuntimeError(f"compare_with_do_bench needs Triton: {e}") from None
    ours = time_cuda(fn, device=device, cold_l2=True, min_run_time_s=min_run_time_s).median_ms
    theirs = float(do_bench(fn, warmup=25, rep=max(1, int(min_run_time_s * 1e3)), return_mode="median"))
    return {"harness_ms": ours, "do_bench_ms": theirs, "ratio": ours / theirs if theirs > 0 else float("nan")}


MODES = ("auto", "cold", "warm", "graph", "graph-cold")


def measure(
    fn: Callable[[], Any],
    device: torch.device | str = "cpu",
    *,
    mode: str = "auto",
    min_run_time_s: float = 0.5,
    waits: bool = False,
    threads: int | None = None,
) -> Measurement:
    """Time ``fn`` on ``device`` and warn when the result is noisy or contended.

    Args:
        mode: ``auto`` (cpu on CPU, cold-L2 on CUDA), ``cold``, ``warm``, ``graph`` or
            ``graph-cold`` (graph replay with an L2 flush before each replay).
        waits: ``fn`` waits by design (server round trip, data loader, process group,
            GPU synchronisation): its low CPU time is not taken as preemption.
        threads: intra-op threads on the CPU (default: the current torch setting).

    Raises:
        ValueError: for an unknown mode or a CUDA mode on a CPU device.
    """
    device = torch.device(device)
    if mode not in MODES:
        raise ValueError(f"unknown timing mode {mode!r}; use {', '.join(MODES)}")
    if device.type != "cuda":
        if mode != "auto":
            raise ValueError(f"timing mode {mode!r} needs a CUDA device, got {device}")
        m = time_cpu(fn, min_run_time_s=min_run_time_s, threads=threads, waits=waits)
    elif mode in ("graph", "graph-cold"):
        m = time_cuda_graph(fn, device=device, min_run_time_s=min_run_time_s, cold_l2=mode == "graph-cold")
    else:
        m = time_cuda(fn, device=device, cold_l2=(mode != "warm"), min_run_time_s=min_run_time_s)
    m.waits = waits
    if m.contended:
        warnings.warn(f"contended measurement: {m.contended_reason}", ContendedMeasurementWarning, stacklevel=2)
    elif m.noisy:
        warnings.warn(
            f"noisy measurement: IQR/median = {m.noise:.0%} (> {NOISE_THRESHOLD:.0%}); "
            "differences below this spread are noise",
            NoisyMeasurementWarning,
            stacklevel=2,
        )
    return m
