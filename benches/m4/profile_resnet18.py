"""m4 Profile ResNet-18 training, find the top 3 bottlenecks.

Compared: one SGD training step of ResNet-18 (He et al. 2016; ``models.convnets``
preset ``resnet18``, torchvision's layout, 11.7M parameters) run ``plain`` (baseline)
and under ``torch.profiler`` (``profiled``, CPU activity, plus CUDA activity on a GPU);
the difference is the profiler's overhead.

What the task produces, on the device it runs on: a Chrome trace of a few profiled steps
(``resnet18_trace.json`` in the work folder, path in the notes; chrome://tracing or
https://ui.perfetto.dev); the top 3 operators by *self* time (time inside the op minus its
children) as a table and metrics ``top{1,2,3}_self_ms_per_step`` (on CUDA also GPU kernels
by self device time); ranges ``forward``, ``backward`` and ``optimizer`` around the phases,
as ``record_function`` (in the trace) and NVTX ranges for Nsight Systems (no-ops without a
GPU tool attached).

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

The claims put numbers on both (the helpers: ``harness/profiling.py``).
"""

from __future__ import annotations

import dataclasses
import json

import torch
import torch.nn.functional as F
from torch.profiler import profile

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant
from harness.profiling import RANGES, activities, is_operator, mark, profile_steps, self_ms_by_name, top_ops
from harness.timing import measure
from models.convnets import ResNet, resnet_preset


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


# -- wrong rankings (the mutants) ----------------------------------------------------------------
def _ascending(self, averages, k=3, *, device_time=False):
    """WRONG: the top 3 sorted ascending."""
    return sorted(top_ops(averages, k), key=lambda r: r["self_ms"])


def _by_total(self, averages, k=3, *, device_time=False):
    """WRONG: ranked by total time (children included), not self time."""
    rows = [{"op": e.key, "self_ms": e.cpu_time_total / 1e3, "calls": e.count} for e in averages if is_operator(e.key)]
    return sorted(rows, key=lambda r: r["self_ms"], reverse=True)[:k]


def _unfiltered(self, averages, k=3, *, device_time=False):
    """WRONG: no filter: the task's own 'forward' range counts as an operator."""
    rows = [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "calls": e.count} for e in averages]
    rows.sort(key=lambda r: -r["self_ms"])
    fwd = next(r for r in rows if r["op"] == "forward")
    return sorted([fwd] + [r for r in rows if r is not fwd][:2], key=lambda r: -r["self_ms"])


def _skips_second(self, averages, k=3, *, device_time=False):
    """WRONG: the second-largest operator dropped."""
    rows = top_ops(averages, k + 1)
    return [rows[0], rows[2], rows[3]]


def _top(fn) -> dict:
    return {"top_ops": fn}


_MORE = "more than the third extracted op"
_OVERHEAD = "the profiler (CPU activity) costs <= 10% of a ResNet-18 training step"
_CONV = "convolutions (forward and backward) take >= 50% of the step's self CPU time"


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

    metrics = {"conv_self_share": "self CPU time of ops named *conv* / all operators' self CPU time, fraction"}
    claims = (
        metric("conv_self_share", ">=", 0.5, text=_CONV),
        time_ratio("profiled", to="plain", at_most=1.1, text=_OVERHEAD),
    )
    mutants = (
        Mutant("top3_ascending", "sorted ascending", _top(_ascending), match="not sorted by self time, descending"),
        Mutant("top3_by_total_time", "ranked by total time", _top(_by_total), match=_MORE),
        Mutant("top3_includes_ranges", "the forward range counted", _top(_unfiltered), match="are not operator names"),
        Mutant("second_dropped", "the 2nd-largest op dropped", _top(_skips_second), match=_MORE),
    )

    def top_ops(self, averages, k: int = 3, *, device_time: bool = False) -> list[dict]:
        return top_ops(averages, k, device_time=device_time)

    def _profile(self, ctx, config: ProfileConfig):
        step = TrainStep(config, ctx.device, ctx.dtype, ctx.rng_seed)
        trace = ctx.workdir / "resnet18_trace.json"
        prof = profile_steps(step, config.steps, ctx.device, trace)
        ctx.note(f"Chrome trace ({config.label()}, {config.steps} steps, {ctx.device.type}): {trace} (removed after "
                 "the run; DRILLS_KEEP_WORKDIR=1 keeps it for chrome://tracing or Perfetto)")  # fmt: skip
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
        ok = isinstance(events, list) and len(events) > 0
        ctx.expect(ok, f"{trace} has no traceEvents list", name="trace is JSON with traceEvents")
        names = {e.get("name") for e in events if isinstance(e, dict)}
        msg = f"trace lacks the ranges {sorted(set(RANGES) - names)}"
        ctx.expect(set(RANGES) <= names, msg, name="forward/backward/optimizer ranges in the trace")
        top = self.top_ops(prof.key_averages())
        ctx.expect(len(top) == 3, f"expected 3 operators, got {top}", name="top 3 extracted")
        ms = [r["self_ms"] for r in top]
        msg = f"top 3 {[r['op'] for r in top]} are not operator names seen in the trace"
        ctx.expect(all(is_operator(r["op"]) and r["op"] in names for r in top), msg, name="top 3 are real operators")
        ctx.expect(all(m > 0 for m in ms), f"non-positive self times {ms}", name="self times positive")
        msg = f"top 3 not sorted by self time, descending: {ms}"
        ctx.expect(ms == sorted(ms, reverse=True), msg, name="top 3 sorted descending")
        raw = self_ms_by_name(prof.events())
        rest = {k: v for k, v in raw.items() if k not in {r["op"] for r in top}}
        worst = max(rest.items(), key=lambda kv: kv[1]) if rest else ("-", 0.0)
        third = raw.get(top[-1]["op"], 0.0)
        msg = f"{worst[0]} has {worst[1]:.3f} ms self time, {_MORE} {top[-1]['op']} ({third:.3f} ms)"
        ctx.expect(worst[1] <= third * (1 + 1e-6) + 1e-6, msg, name="top 3 are the largest")

    # -- bench -------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: ProfileConfig) -> Prepared:
        step = TrainStep(config, ctx.device, ctx.dtype, ctx.rng_seed)
        step()  # momentum buffers and lazy initialisation outside the timing
        if impl == "plain":
            return Prepared(fn=step, items=config.batch, item_unit="images")
        prof = profile(activities=activities(ctx.device))
        prof.__enter__()  # the profiler records every timed step
        stop = lambda: prof.__exit__(None, None, None)  # noqa: E731 (a one-line teardown)
        return Prepared(fn=step, items=config.batch, item_unit="images", teardown=stop)

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
        raw = self_ms_by_name(prof.events())
        ctx.metric("conv_self_share", sum(v for k, v in raw.items() if "conv" in k) / max(sum(raw.values()), 1e-12))
        averages = prof.key_averages()
        rankings = [("self CPU time", False)] + ([("self GPU time (kernels)", True)] if ctx.is_cuda else [])
        for what, device_time in rankings:
            top = self.top_ops(averages, device_time=device_time)
            per_step = [(r["op"], round(r["self_ms"] / config.steps, 3), r["calls"] // config.steps) for r in top]
            rows = [
                dict(rank=i + 1, op=o, self_ms_per_step=ms, calls_per_step=c) for i, (o, ms, c) in enumerate(per_step)
            ]
            ctx.table(f"top 3 operators by {what} ({config.label()}, per step)", rows)
            prefix = "top" if not device_time else "gpu_top"
            for i, r in enumerate(top):
                ctx.metric(f"{prefix}{i + 1}_self_ms_per_step", r["self_ms"] / config.steps)
