"""m4 Profile ResNet-18 training, find the top 3 bottlenecks.

Compared: one SGD training step of ResNet-18 (He et al. 2016; ``models.convnets``
preset ``resnet18``, torchvision's layout, 11.7M parameters) run ``plain`` (baseline)
and under ``torch.profiler`` (``profiled``, CPU activity, plus CUDA activity on a GPU);
the difference is the profiler's overhead.

What the task produces, on the device it runs on (CPU here at a small input, CUDA when
present):

* a Chrome trace of a few profiled steps, ``resnet18_trace.json`` in the task's work folder
  (path in the notes; open it in chrome://tracing or https://ui.perfetto.dev);
* the top 3 operators by *self* time (time inside the op minus its children) from
  ``prof.key_averages()``, as a table and as metrics ``top{1,2,3}_self_ms_per_step``;
  on CUDA a second table ranks GPU kernels by self device time;
* ranges ``forward``, ``backward`` and ``optimizer`` around the three phases, both as
  ``torch.profiler.record_function`` (they appear in the trace) and as NVTX ranges for
  Nsight Systems (the ``nvtx`` package when importable, else ``torch.cuda.nvtx`` on CUDA).
  Without a GPU and an NVTX tool attached, NVTX ranges are no-ops: they cost a function call
  and record nothing; the record_function ranges are what shows in this trace.

Check (tiny): the trace file exists and parses as JSON with a non-empty ``traceEvents``
list that contains the three ranges; the top 3 are real operator names (not the task's own
ranges, ``ProfilerStep`` or optimizer wrappers), each seen in the trace, with positive self
time, sorted descending, and no other operator has more self time than the third, judged
from the raw event list independently of ``key_averages``.

Bench: step time plain and profiled, the plain step timed a second time after both
(``plain_rerun_spread_pct``: a profiler overhead smaller than that spread is noise), then a
profiled run for the trace and the tables.

Lesson: in a CNN training step the convolutions dominate (forward ``mkldnn_convolution``
and ``convolution_backward`` on CPU; cuDNN kernels on GPU), then the batch-norm kernels
and elementwise adds/ReLUs, which are memory-bound; the profiler's own cost is per event,
so it weighs most where ops are short.

Figures. This CPU (cpu size: batch 4 at 64x64, float32, one thread, 2026-11-29, other jobs
sharing the cores): a step takes 340-400 ms; top 3 by self CPU time per step:
``aten::convolution_backward`` 141-159 ms (20 calls), ``aten::mkldnn_convolution`` 68 ms
(20 calls), ``aten::add_`` 22-29 ms (152 calls: residual adds and the SGD update); at batch
8, 112x112 the third was ``aten::max_pool2d_with_indices``. Profiler overhead: not resolved
here: two timings of the plain step differed by 17-27%, more than any difference between
plain and profiled (the task records both and says so in a note). H200 (batch 64 at
224x224): not measured yet.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function

from harness import Comparison, Prepared, task
from harness.timing import measure
from models.convnets import ResNet, resnet_preset

#: The task's own ranges: they are not operators and never count in the top 3.
RANGES = ("forward", "backward", "optimizer")
_NOT_OPS = ("ProfilerStep", "Optimizer.", "[memory]", "autograd::engine::evaluate_function", "cudaDeviceSynchronize")


@dataclasses.dataclass(frozen=True)
class ProfileConfig:
    """A ResNet-18 training step on random images."""

    batch: int
    """images per step"""
    image: int
    """height = width in pixels (224 is ImageNet's training crop)"""
    steps: int = 2
    """steps recorded in the trace (after one untraced warm-up step)"""
    num_classes: int = 1000
    """logits per image"""

    def label(self) -> str:
        return f"resnet18 B={self.batch} {self.image}x{self.image}"


def nvtx_range(name: str):
    """An NVTX range (no-op without a GPU tool attached)."""
    try:
        import nvtx

        return nvtx.annotate(name, domain="torchdrills")
    except ImportError:
        if torch.cuda.is_available():
            return torch.cuda.nvtx.range(name)
        return contextlib.nullcontext()


@contextlib.contextmanager
def mark(name: str):
    """A range in the profiler trace and in NVTX."""
    with record_function(name), nvtx_range(name):
        yield


class TrainStep:
    """One SGD step of ResNet-18 with the three phases marked."""

    def __init__(self, config: ProfileConfig, device, dtype, seed: int):
        torch.manual_seed(seed)
        self.model = ResNet(resnet_preset("resnet18", num_classes=config.num_classes)).to(device, dtype)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(config.batch, 3, config.image, config.image, generator=g, dtype=dtype).to(device)
        self.y = torch.randint(0, config.num_classes, (config.batch,), generator=g).to(device)

    def __call__(self) -> None:
        with mark("forward"):
            loss = F.cross_entropy(self.model(self.x), self.y)
        with mark("backward"):
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        with mark("optimizer"):
            self.opt.step()


def activities(device: torch.device) -> list:
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])


_RUNTIME_API = re.compile(r"^cu(da)?[A-Z]")  # cudaLaunchKernel, cuLaunchKernelEx, cudaMemcpyAsync, ...


def is_operator(name: str) -> bool:
    """An operator or kernel: not a range of ours, torch's wrappers or a CUDA runtime/driver call."""
    return bool(name) and name not in RANGES and not name.startswith(_NOT_OPS) and not _RUNTIME_API.match(name)


def _self_us(e, device_time: bool) -> float:
    if device_time:  # renamed from self_cuda_time_total in torch 2.4
        return float(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)))
    return float(e.self_cpu_time_total)


def top_ops(averages, k: int = 3, *, device_time: bool = False) -> list[dict]:
    """The ``k`` operators with the largest self time in ``prof.key_averages()``, descending.

    Rows: ``op``, ``self_ms`` (total over the profiled steps), ``calls``. Our ranges,
    torch's wrappers and runtime calls are excluded (:func:`is_operator`). ``device_time``
    ranks GPU kernels (rows whose device is CUDA) by self device time; otherwise CPU-side
    operators by self CPU time (on a GPU that is their host cost: dispatch and launch).
    """
    cuda_type = torch.autograd.DeviceType.CUDA
    rows = [
        {"op": e.key, "self_ms": _self_us(e, device_time) / 1e3, "calls": int(e.count)}
        for e in averages
        if is_operator(e.key) and ((getattr(e, "device_type", None) == cuda_type) == device_time)
    ]
    rows.sort(key=lambda r: r["self_ms"], reverse=True)
    return rows[:k]


def self_ms_by_name(events) -> dict[str, float]:
    """Self CPU ms per operator name summed over raw profiler events (independent of key_averages)."""
    out: dict[str, float] = defaultdict(float)
    for e in events:
        if is_operator(e.name):
            out[e.name] += e.self_cpu_time_total / 1e3
    return dict(out)


def profile_steps(step: TrainStep, config: ProfileConfig, device: torch.device, trace: Path):
    """Warm up once, profile ``config.steps`` steps, write the Chrome trace; return the profiler."""
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    with profile(activities=activities(device)) as prof:
        for _ in range(config.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    prof.export_chrome_trace(str(trace))
    return prof


@task("m4.profile_resnet18", seed="m4", title="profile ResNet-18 training, top 3 bottlenecks")
class ProfileResNet18(Comparison):
    __doc__ = __doc__
    variants = ("plain", "profiled")
    gpu_check = True
    sizes = {
        "tiny": ProfileConfig(batch=2, image=32, num_classes=10),
        "cpu": ProfileConfig(batch=4, image=64),
        "gpu": ProfileConfig(batch=64, image=224, steps=3),
    }

    def top_ops(self, averages, k: int = 3, *, device_time: bool = False) -> list[dict]:
        return top_ops(averages, k, device_time=device_time)

    def _profile(self, ctx, config: ProfileConfig):
        step = TrainStep(config, ctx.device, ctx.dtype, ctx.rng_seed)
        trace = ctx.workdir / "resnet18_trace.json"
        prof = profile_steps(step, config, ctx.device, trace)
        ctx.note(f"Chrome trace ({config.label()}, {config.steps} steps, {ctx.device.type}): {trace}")
        if not (ctx.is_cuda or ctx.has("cuda")):
            ctx.note(
                "NVTX ranges are no-ops here (no GPU, no NVTX tool attached); the forward/backward/"
                "optimizer ranges in the trace come from torch.profiler.record_function."
            )
        return prof, trace

    def check(self, ctx) -> None:
        config = ctx.configs[0]
        prof, trace = self._profile(ctx, config)
        ctx.expect(trace.is_file() and trace.stat().st_size > 0, f"no trace file at {trace}", name="trace written")
        try:
            data = json.loads(trace.read_text())
        except (OSError, json.JSONDecodeError) as e:
            ctx.expect(False, f"{trace} does not parse as JSON: {e}", name="trace is JSON")
            return
        events = data.get("traceEvents") if isinstance(data, dict) else None
        ctx.expect(
            isinstance(events, list) and len(events) > 0,
            f"{trace} has no traceEvents list",
            name="trace is JSON with traceEvents",
        )
        names = {e.get("name") for e in events if isinstance(e, dict)}
        ctx.expect(
            set(RANGES) <= names,
            f"trace lacks the ranges {sorted(set(RANGES) - names)}",
            name="forward/backward/optimizer ranges in the trace",
        )
        top = self.top_ops(prof.key_averages())
        ctx.expect(len(top) == 3, f"expected 3 operators, got {top}", name="top 3 extracted")
        ms = [r["self_ms"] for r in top]
        ctx.expect(
            all(is_operator(r["op"]) and r["op"] in names for r in top),
            f"top 3 {[r['op'] for r in top]} are not operator names seen in the trace",
            name="top 3 are real operators",
        )
        ctx.expect(all(m > 0 for m in ms), f"non-positive self times {ms}", name="self times positive")
        ctx.expect(
            ms == sorted(ms, reverse=True),
            f"top 3 not sorted by self time, descending: {ms}",
            name="top 3 sorted descending",
        )
        raw = self_ms_by_name(prof.events())
        rest = {k: v for k, v in raw.items() if k not in {r["op"] for r in top}}
        worst = max(rest.items(), key=lambda kv: kv[1]) if rest else ("-", 0.0)
        third = raw.get(top[-1]["op"], 0.0)
        ctx.expect(
            worst[1] <= third * (1 + 1e-6) + 1e-6,
            f"{worst[0]} has {worst[1]:.3f} ms self time, more than the third extracted op "
            f"{top[-1]['op']} ({third:.3f} ms)",
            name="top 3 are the largest",
        )

    # -- bench -------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: ProfileConfig) -> Prepared:
        step = TrainStep(config, ctx.device, ctx.dtype, ctx.rng_seed)
        step()  # momentum buffers and lazy initialisation outside the timing
        if impl == "plain":
            return Prepared(fn=step, items=config.batch, item_unit="images")
        prof = profile(activities=activities(ctx.device))
        prof.__enter__()  # the profiler records every timed step
        return Prepared(
            fn=step, items=config.batch, item_unit="images", teardown=lambda: prof.__exit__(None, None, None)
        )

    def bench(self, ctx) -> None:
        config = ctx.configs[0]
        # several samples of a step that takes a good part of a second: the difference is a few %
        run_s = max(ctx.min_run_time_s, 2.0)
        med = {}
        for v in self.variants:
            prepared = self.prepare(ctx, v, config)
            try:
                med[v] = ctx.measure(v, prepared, config=config, min_run_time_s=run_s).median_ms
            finally:
                if prepared.teardown:
                    prepared.teardown()
        # plain again, after: the spread between the two plain runs is this run's noise (METHOD:
        # "time the same version twice"); an overhead smaller than it is not measured
        rerun = measure(self.prepare(ctx, "plain", config).fn, ctx.device, min_run_time_s=run_s).median_ms
        overhead = 100 * (med["profiled"] / med["plain"] - 1)
        spread = 100 * abs(rerun - med["plain"]) / med["plain"]
        ctx.metric("profiler_overhead_pct", overhead)
        ctx.metric("plain_rerun_spread_pct", spread)
        if abs(overhead) <= spread:
            ctx.note(
                f"profiler overhead {overhead:+.1f}% is within this run's noise ({spread:.1f}% between two "
                "timings of the plain step): not resolved here"
            )
        prof, _ = self._profile(ctx, config)
        averages = prof.key_averages()
        rankings = [("self CPU time", False)] + ([("self GPU time (kernels)", True)] if ctx.is_cuda else [])
        for what, device_time in rankings:
            top = self.top_ops(averages, device_time=device_time)
            ctx.table(
                f"top 3 operators by {what} ({config.label()}, per step)",
                [
                    {
                        "rank": i + 1,
                        "op": r["op"],
                        "self_ms_per_step": round(r["self_ms"] / config.steps, 3),
                        "calls_per_step": r["calls"] // config.steps,
                    }
                    for i, r in enumerate(top)
                ],
            )
            prefix = "top" if not device_time else "gpu_top"
            for i, r in enumerate(top):
                ctx.metric(f"{prefix}{i + 1}_self_ms_per_step", r["self_ms"] / config.steps)
