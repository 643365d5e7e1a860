"""m4 Allocator fragmentation across batch sizes.

Compared: how much memory PyTorch's CUDA caching allocator holds but does not use, while a
training step (an MLP, forward + backward + SGD) runs through the same batch sizes in
different orders:

* schedules: ``increasing``, ``decreasing`` and ``random`` (a seeded permutation) of one
  multiset of batch sizes, so each schedule does exactly the same work;
* variants: the allocator's ``default`` settings, and ``expandable_segments`` (set at run
  time with ``torch.cuda.memory._set_allocator_settings("expandable_segments:True")``,
  where this torch allows it; it only affects segments created afterwards, so the cache is
  emptied first).

Measured after every step, from ``torch.cuda.memory_stats()``:
``free_in_reserved = reserved_bytes.all.current - allocated_bytes.all.current`` (bytes the
allocator keeps in its segments that no tensor uses: fragments and cached blocks), its
ratio to reserved, ``inactive_split_bytes.all.current`` (free pieces of split blocks), and
over the schedule the peaks of reserved and allocated (PyTorch docs, "CUDA semantics:
memory management" and ``torch.cuda.memory_stats``).

Why the order matters: the allocator rounds large requests up to whole segments and never
hands a freed block to a *larger* request; it only splits blocks for smaller ones. Rising
batch sizes therefore leave every earlier (smaller) segment behind, cached but too small,
and reserved memory climbs above what the largest step needs; falling sizes reuse the first,
largest segments for everything after. Expandable segments grow one mapping in place
instead of creating new segments, which is what removes that slack.

Check. CPU: the schedule generator (each kind is a permutation of the same multiset;
increasing/decreasing are sorted; random is reproducible per seed and differs between
seeds) and the stats-to-fragmentation arithmetic on stats dicts fabricated in
``memory_stats``' format, with known answers (and errors for missing keys and inconsistent
stats). CUDA: on a short schedule, the figures from ``memory_stats`` agree with
``torch.cuda.memory_reserved() - torch.cuda.memory_allocated()`` after every step.
Bench (CUDA): a table and curves of free-in-reserved per schedule and variant.

Figures. CPU: check only. H200 (gpu size): not measured yet.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import random
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from harness import Comparison, task

SCHEDULES = ("increasing", "decreasing", "random")
_MB = 1e6


def make_schedule(kind: str, batches: Sequence[int], *, seed: int = 0, repeats: int = 1) -> list[int]:
    """An order of ``batches`` (repeated ``repeats`` times) for a schedule ``kind``.

    ``increasing``/``decreasing``: sorted; ``random``: a permutation drawn from
    ``random.Random(seed)``. Every kind returns the same multiset, so schedules differ only
    in order.

    Raises:
        ValueError: unknown kind, empty ``batches``, a batch size < 1, ``repeats < 1``.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; use one of {SCHEDULES}")
    if not batches or repeats < 1:
        raise ValueError("a schedule needs at least one batch size and repeats >= 1")
    if any((not isinstance(b, int)) or b < 1 for b in batches):
        raise ValueError(f"batch sizes must be ints >= 1, got {list(batches)}")
    sizes = [int(b) for b in batches] * repeats
    if kind == "increasing":
        return sorted(sizes)
    if kind == "decreasing":
        return sorted(sizes, reverse=True)
    rng = random.Random(seed)
    rng.shuffle(sizes)
    return sizes


_REQUIRED = ("reserved_bytes.all.current", "allocated_bytes.all.current")


def fragmentation(stats: Mapping[str, Any]) -> dict[str, float]:
    """Fragmentation figures of one ``torch.cuda.memory_stats()`` dict.

    Returns (MB = 10**6 bytes): ``reserved_mb``, ``allocated_mb``, ``free_in_reserved_mb`` =
    reserved - allocated, ``frag_ratio`` = free_in_reserved / reserved (0 when nothing is
    reserved), ``inactive_split_mb`` (0 when the key is absent).

    Raises:
        ValueError: a required key is missing (pass ``torch.cuda.memory_stats()``), or
            allocated exceeds reserved (stats from two different moments).
    """
    missing = [k for k in _REQUIRED if k not in stats]
    if missing:
        raise ValueError(f"stats lack {missing}; pass the dict torch.cuda.memory_stats() returns")
    reserved = float(stats["reserved_bytes.all.current"])
    allocated = float(stats["allocated_bytes.all.current"])
    if allocated > reserved:
        raise ValueError(f"allocated ({allocated:.0f} B) exceeds reserved ({reserved:.0f} B): inconsistent stats")
    free = reserved - allocated
    return {
        "reserved_mb": reserved / _MB,
        "allocated_mb": allocated / _MB,
        "free_in_reserved_mb": free / _MB,
        "frag_ratio": free / reserved if reserved else 0.0,
        "inactive_split_mb": float(stats.get("inactive_split_bytes.all.current", 0)) / _MB,
    }


def summarize(trace: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Aggregate per-step :func:`fragmentation` dicts over a schedule (MB).

    Returns ``peak_reserved_mb``, ``peak_allocated_mb`` (between steps), ``peak_free_mb``,
    ``mean_free_mb``, ``final_free_mb``, ``mean_frag_ratio``. Raises ValueError on an empty trace.
    """
    if not trace:
        raise ValueError("an empty trace has no summary")
    free = [t["free_in_reserved_mb"] for t in trace]
    return {
        "peak_reserved_mb": max(t["reserved_mb"] for t in trace),
        "peak_allocated_mb": max(t["allocated_mb"] for t in trace),
        "peak_free_mb": max(free),
        "mean_free_mb": statistics.fmean(free),
        "final_free_mb": free[-1],
        "mean_frag_ratio": statistics.fmean(t["frag_ratio"] for t in trace),
    }


@dataclasses.dataclass(frozen=True)
class FragConfig:
    """Batch sizes and the MLP whose training step allocates with them."""

    batches: tuple[int, ...]
    """the multiset of batch sizes every schedule runs"""
    width: int
    """hidden width of the MLP (activations are batch x width float32)"""
    layers: int = 3
    """hidden layers"""
    repeats: int = 1
    """times each batch size occurs in a schedule"""

    def label(self) -> str:
        return (
            f"{len(self.batches)}x{self.repeats} batches {min(self.batches)}..{max(self.batches)}, width={self.width}"
        )


class Step:
    """One SGD step of an MLP on a (B, width) batch: allocations scale with B."""

    def __init__(self, config: FragConfig, device, seed: int):
        g = torch.Generator().manual_seed(seed)
        w = config.width
        self.weights = [
            (torch.randn(w, w, generator=g) / w**0.5).to(device).requires_grad_() for _ in range(config.layers)
        ]
        self.device, self.width, self.seed = device, w, seed

    def __call__(self, batch: int) -> None:
        x = torch.randn(batch, self.width, device=self.device)  # (B, W)
        for w in self.weights:
            x = F.gelu(x @ w)
        x.square().mean().backward()
        with torch.no_grad():
            for w in self.weights:
                w -= 1e-3 * w.grad
                w.grad = None


# A stats dict in torch.cuda.memory_stats()'s format with hand-picked numbers (fabricated,
# not read from a GPU): 512 MiB reserved, 300 MiB allocated.
FABRICATED_STATS = {
    "allocated_bytes.all.current": 300 * 2**20,
    "allocated_bytes.all.peak": 450 * 2**20,
    "reserved_bytes.all.current": 512 * 2**20,
    "reserved_bytes.all.peak": 512 * 2**20,
    "active_bytes.all.current": 310 * 2**20,
    "inactive_split_bytes.all.current": 42 * 2**20,
    "num_alloc_retries": 0,
    "num_ooms": 0,
    "segment.all.current": 9,
}


@task("m4.allocator_fragmentation", seed="m4", title="allocator fragmentation across batch sizes")
class AllocatorFragmentation(Comparison):
    __doc__ = __doc__
    variants = ("default", "expandable_segments")
    gpu_check = True
    sizes = {
        "tiny": FragConfig(batches=(3, 17, 64, 5, 250, 1), width=128),
        # 32 sizes 512..16384: activations 4 MiB .. 128 MiB each
        "gpu": FragConfig(batches=tuple(range(512, 16385, 512)), width=2048),
    }

    # -- the parts tests may replace ---------------------------------------------------------
    def schedule(self, kind: str, config: FragConfig, seed: int) -> list[int]:
        return make_schedule(kind, config.batches, seed=seed, repeats=config.repeats)

    def fragmentation(self, stats: Mapping[str, Any]) -> dict[str, float]:
        return fragmentation(stats)

    # -- check -------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        config = ctx.configs[0]
        base = sorted(list(config.batches) * config.repeats)
        for kind in SCHEDULES:
            s = self.schedule(kind, config, ctx.rng_seed)
            ctx.expect(
                sorted(s) == base,
                f"{kind} schedule {s} is not a permutation of the batch sizes {base}",
                name="schedules share one multiset",
            )
        ctx.expect(
            self.schedule("increasing", config, 0) == base,
            "increasing schedule is not sorted ascending",
            name="increasing is sorted",
        )
        ctx.expect(
            self.schedule("decreasing", config, 0) == base[::-1],
            "decreasing schedule is not sorted descending",
            name="decreasing is sorted",
        )
        r1, r2 = self.schedule("random", config, 1), self.schedule("random", config, 1)
        ctx.expect(r1 == r2, "random schedule differs for the same seed", name="random is reproducible")
        ctx.expect(
            r1 not in (base, base[::-1]) and r1 != self.schedule("random", config, 2),
            "random schedule is sorted or ignores its seed",
            name="random is shuffled by its seed",
        )
        self._check_arithmetic(ctx)
        if ctx.require("cuda", part="fragmentation read from torch.cuda.memory_stats on a real schedule"):
            self._check_live(ctx, config)

    def _check_arithmetic(self, ctx) -> None:
        f = self.fragmentation(FABRICATED_STATS)
        mib = 2**20 / _MB
        want = {
            "reserved_mb": 512 * mib,
            "allocated_mb": 300 * mib,
            "free_in_reserved_mb": 212 * mib,
            "frag_ratio": 212 / 512,
            "inactive_split_mb": 42 * mib,
        }
        for k, v in want.items():
            ctx.expect(
                k in f and abs(f[k] - v) <= 1e-9 * max(1.0, abs(v)),
                f"fragmentation({k}) = {f.get(k)}, expected {v}",
                name="stats arithmetic (fabricated dict)",
            )
        empty = self.fragmentation({"reserved_bytes.all.current": 0, "allocated_bytes.all.current": 0})
        ctx.expect(
            empty["frag_ratio"] == 0.0 and empty["free_in_reserved_mb"] == 0.0,
            f"nothing reserved should give 0 fragmentation, got {empty}",
            name="empty allocator",
        )
        ctx.expect_raises(
            ValueError,
            lambda: self.fragmentation({"allocated_bytes.all.current": 1}),
            match="reserved_bytes.all.current",
            name="missing key raises",
        )
        ctx.expect_raises(
            ValueError,
            lambda: self.fragmentation({"reserved_bytes.all.current": 1, "allocated_bytes.all.current": 2}),
            match="inconsistent",
            name="inconsistent stats raise",
        )
        trace = [
            self.fragmentation({"reserved_bytes.all.current": r * 2**20, "allocated_bytes.all.current": a * 2**20})
            for r, a in ((100, 40), (300, 280), (300, 100))
        ]
        sm = summarize(trace)
        ctx.expect(
            abs(sm["peak_free_mb"] - 200 * mib) < 1e-9
            and abs(sm["final_free_mb"] - 200 * mib) < 1e-9
            and abs(sm["mean_free_mb"] - (60 + 20 + 200) / 3 * mib) < 1e-9
            and abs(sm["peak_reserved_mb"] - 300 * mib) < 1e-9,
            f"summary of a known trace is wrong: {sm}",
            name="summary arithmetic",
        )

    def _check_live(self, ctx, config: FragConfig) -> None:
        step = Step(config, ctx.device, ctx.rng_seed)
        for b in self.schedule("random", config, ctx.rng_seed):
            step(b)
            ctx.sync()
            f = self.fragmentation(torch.cuda.memory_stats(ctx.device))
            direct = (torch.cuda.memory_reserved(ctx.device) - torch.cuda.memory_allocated(ctx.device)) / _MB
            ctx.expect(
                abs(f["free_in_reserved_mb"] - direct) < 1e-6 and f["free_in_reserved_mb"] >= 0,
                f"batch {b}: memory_stats gives {f['free_in_reserved_mb']} MB free in reserved, "
                f"memory_reserved - memory_allocated gives {direct} MB",
                name="stats agree with the allocator",
            )

    # -- bench -------------------------------------------------------------------------------
    def bench(self, ctx) -> None:
        if not ctx.require("cuda", part="reserved-minus-allocated per batch-size schedule"):
            return
        config = ctx.configs[0]
        rows = []
        for variant in self.variants:
            why = _set_expandable(True) if variant == "expandable_segments" else None
            if why:
                ctx.skip_part("expandable_segments variant", why)
                continue
            try:
                for kind in SCHEDULES:
                    trace = self._run_schedule(ctx, config, kind)
                    sm = summarize(trace)
                    rows.append({"variant": variant, "schedule": kind, **{k: round(v, 3) for k, v in sm.items()}})
                    for k in ("peak_free_mb", "mean_free_mb", "peak_reserved_mb"):
                        ctx.metric(f"{k}_{kind}_{variant}", sm[k])
                    ctx.curve(
                        f"free in reserved ({variant})",
                        list(range(1, len(trace) + 1)),
                        [t["free_in_reserved_mb"] for t in trace],
                        x_label="step",
                        y_label="MB",
                        series=kind,
                    )
            finally:
                if variant == "expandable_segments":
                    _set_expandable(_env_expandable())
        ctx.table("fragmentation per schedule", rows)

    def _run_schedule(self, ctx, config: FragConfig, kind: str) -> list[dict[str, float]]:
        gc.collect()
        ctx.sync()
        torch.cuda.empty_cache()  # start every schedule from an empty cache
        torch.cuda.reset_peak_memory_stats(ctx.device)
        step = Step(config, ctx.device, ctx.rng_seed)
        trace = []
        for b in self.schedule(kind, config, ctx.rng_seed):
            step(b)
            ctx.sync()
            trace.append(self.fragmentation(torch.cuda.memory_stats(ctx.device)))
        del step
        return trace


def _env_expandable() -> bool:
    conf = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")
    return "expandable_segments:true" in conf.replace(" ", "").lower()


def _set_expandable(on: bool) -> str | None:
    """Switch expandable segments for segments created from now on; None, or why this torch cannot."""
    setter = getattr(getattr(torch.cuda, "memory", None), "_set_allocator_settings", None)
    if setter is None:
        return "torch.cuda.memory._set_allocator_settings is absent in this torch"
    try:
        gc.collect()
        torch.cuda.empty_cache()
        setter(f"expandable_segments:{'True' if on else 'False'}")
        return None
    except Exception as e:  # noqa: BLE001 - any refusal means the variant cannot run here
        return f"setting expandable_segments failed: {type(e).__name__}: {e}"
