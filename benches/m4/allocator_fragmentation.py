"""m4 Allocator fragmentation across batch sizes.

Compared: how much memory PyTorch's CUDA caching allocator holds but does not use while a
training step (an MLP, forward + backward + SGD) runs through one multiset of batch sizes
in ``increasing``, ``decreasing`` and seeded ``random`` order (the same work), with the
allocator's ``default`` settings and with ``expandable_segments`` (set at run time where
this torch allows it; it only affects segments created afterwards, so the cache is emptied
first). Measured after every step from ``torch.cuda.memory_stats()``: free-in-reserved =
reserved - allocated bytes (fragments and cached blocks no tensor uses), its ratio to
reserved, the inactive split bytes, and the peaks of reserved and allocated
(``harness/allocator_stats.py``; PyTorch docs, "CUDA semantics: memory management").

Why the order matters: the allocator rounds large requests up to whole segments and never
hands a freed block to a *larger* request; it only splits blocks for smaller ones. Rising
batch sizes therefore leave every earlier (smaller) segment behind, cached but too small,
and reserved memory climbs above what the largest step needs; falling sizes reuse the first,
largest segments for everything after. Expandable segments grow one mapping in place
instead of creating new segments, which is what removes that slack.

Check. CPU: the schedules (permutations of one multiset; sorted; random reproducible per
seed) and the stats arithmetic on a dict fabricated in ``memory_stats``' format, with known
answers and errors for missing keys and inconsistent stats. CUDA: ``memory_stats`` agrees
with ``memory_reserved() - memory_allocated()`` after every step of a short schedule. Bench
(CUDA): a table and curves of free-in-reserved per schedule and variant; the claims are
cuda-only.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Mapping
from typing import Any

import torch

import harness.allocator_stats as A
from harness import Comparison, task
from harness.allocator_stats import MB, SCHEDULES, Step, fragmentation, make_schedule, summarize
from harness.claims import metric
from harness.mutants import Mutant


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
        lo, hi = min(self.batches), max(self.batches)
        return f"{len(self.batches)}x{self.repeats} batches {lo}..{hi}, width={self.width}"


# -- wrong schedules and arithmetic (the mutants) -------------------------------------------------
def _decreasing_unsorted(self, kind, config, seed):
    """WRONG: 'decreasing' is the input order reversed, not sorted."""
    s = AllocatorFragmentation.schedule(self, kind, config, seed)
    return list(reversed(config.batches)) if kind == "decreasing" else s


def _seed_ignored(self, kind, config, seed):
    """WRONG: the random schedule ignores its seed."""
    return AllocatorFragmentation.schedule(self, kind, config, 0)


def _drops_a_batch(self, kind, config, seed):
    """WRONG: the schedule loses its last batch."""
    return AllocatorFragmentation.schedule(self, kind, config, seed)[:-1]


def _free_from_active(self, stats):
    """WRONG: free = reserved - *active* bytes (active includes blocks freed but still used by a stream)."""
    f = fragmentation(stats)
    if "active_bytes.all.current" in stats:
        f["free_in_reserved_mb"] = (stats["reserved_bytes.all.current"] - stats["active_bytes.all.current"]) / MB
    return f


def _ratio_over_allocated(self, stats):
    """WRONG: the ratio divides by allocated, not reserved."""
    f = fragmentation(stats)
    f["frag_ratio"] = f["free_in_reserved_mb"] / f["allocated_mb"] if f["allocated_mb"] else 0.0
    return f


def _sched(fn) -> dict:
    return {"schedule": fn}


def _frag(fn) -> dict:
    return {"fragmentation": fn}


_ORDER = "rising batch sizes reserve >= 1.2x the peak memory falling ones do (same work, default allocator)"
_EXPAND = "expandable segments cut the rising schedule's peak free-in-reserved to <= half the default's"


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

    metrics = {
        "peak_reserved_increasing_over_decreasing": "peak reserved MB, increasing / decreasing schedule (default)",
        "peak_free_expandable_over_default": "peak free-in-reserved MB, increasing schedule, expandable / default",
    }
    claims = (
        metric("peak_reserved_increasing_over_decreasing", ">=", 1.2, text=_ORDER, device="cuda"),
        metric("peak_free_expandable_over_default", "<=", 0.5, text=_EXPAND, device="cuda"),
    )
    mutants = (
        Mutant("decreasing_unsorted", "decreasing = reversed input", _sched(_decreasing_unsorted), match="not sorted"),
        Mutant("random_ignores_seed", "one order for every seed", _sched(_seed_ignored), match="ignores its seed"),
        Mutant("schedule_drops_a_batch", "the last batch lost", _sched(_drops_a_batch), match="not a permutation"),
        Mutant("free_from_active_bytes", "reserved - active", _frag(_free_from_active), match="(free_in_reserved_mb)"),
        Mutant("ratio_over_allocated", "free / allocated", _frag(_ratio_over_allocated), match="frag_ratio"),
    )

    # -- the parts the mutants replace -------------------------------------------------------
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
            msg = f"{kind} schedule {s} is not a permutation of the batch sizes {base}"
            ctx.expect(sorted(s) == base, msg, name="schedules share one multiset")
        inc, dec = self.schedule("increasing", config, 0), self.schedule("decreasing", config, 0)
        ctx.expect(inc == base, "increasing schedule is not sorted ascending", name="increasing is sorted")
        ctx.expect(dec == base[::-1], "decreasing schedule is not sorted descending", name="decreasing is sorted")
        r1, r2 = self.schedule("random", config, 1), self.schedule("random", config, 1)
        ctx.expect(r1 == r2, "random schedule differs for the same seed", name="random is reproducible")
        shuffled = r1 not in (base, base[::-1]) and r1 != self.schedule("random", config, 2)
        ctx.expect(shuffled, "random schedule is sorted or ignores its seed", name="random is shuffled by its seed")
        self._check_arithmetic(ctx)
        if ctx.require("cuda", part="fragmentation read from torch.cuda.memory_stats on a real schedule"):
            self._check_live(ctx, config)

    def _check_arithmetic(self, ctx) -> None:
        f = self.fragmentation(A.FABRICATED_STATS)
        mib = 2**20 / MB
        want = dict(reserved_mb=512 * mib, allocated_mb=300 * mib, free_in_reserved_mb=212 * mib)
        want.update(frag_ratio=212 / 512, inactive_split_mb=42 * mib)
        for k, v in want.items():
            ok = k in f and abs(f[k] - v) <= 1e-9 * max(1.0, abs(v))
            ctx.expect(ok, f"fragmentation({k}) = {f.get(k)}, expected {v}", name="stats arithmetic (fabricated dict)")
        empty = self.fragmentation({"reserved_bytes.all.current": 0, "allocated_bytes.all.current": 0})
        ok = empty["frag_ratio"] == 0.0 and empty["free_in_reserved_mb"] == 0.0
        ctx.expect(ok, f"nothing reserved should give 0 fragmentation, got {empty}", name="empty allocator")

        def stats(r, a):
            return {"reserved_bytes.all.current": r * 2**20, "allocated_bytes.all.current": a * 2**20}

        missing = {"allocated_bytes.all.current": 1}
        ctx.expect_raises(
            ValueError, lambda: self.fragmentation(missing), match="reserved_bytes", name="missing key raises"
        )
        bad = stats(1, 2)
        ctx.expect_raises(
            ValueError, lambda: self.fragmentation(bad), match="inconsistent", name="inconsistent stats raise"
        )
        sm = summarize([self.fragmentation(stats(r, a)) for r, a in ((100, 40), (300, 280), (300, 100))])
        want_sm = dict(peak_free_mb=200, final_free_mb=200, mean_free_mb=(60 + 20 + 200) / 3, peak_reserved_mb=300)
        ok = all(abs(sm[k] - v * mib) < 1e-9 for k, v in want_sm.items())
        ctx.expect(ok, f"summary of a known trace is wrong: {sm}", name="summary arithmetic")

    def _check_live(self, ctx, config: FragConfig) -> None:
        step = Step(config, ctx.device, ctx.rng_seed)
        for b in self.schedule("random", config, ctx.rng_seed):
            step(b)
            ctx.sync()
            f = self.fragmentation(torch.cuda.memory_stats(ctx.device))
            direct = (torch.cuda.memory_reserved(ctx.device) - torch.cuda.memory_allocated(ctx.device)) / MB
            ok = abs(f["free_in_reserved_mb"] - direct) < 1e-6 and f["free_in_reserved_mb"] >= 0
            msg = f"batch {b}: memory_stats gives {f['free_in_reserved_mb']} MB free in reserved, "
            msg += f"memory_reserved - memory_allocated gives {direct} MB"
            ctx.expect(ok, msg, name="stats agree with the allocator")

    # -- bench -------------------------------------------------------------------------------
    def bench(self, ctx) -> None:
        if not ctx.require("cuda", part="reserved-minus-allocated per batch-size schedule"):
            return
        config = ctx.configs[0]
        rows = []
        for variant in self.variants:
            why = A.set_expandable(True) if variant == "expandable_segments" else None
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
                    steps, free = list(range(1, len(trace) + 1)), [t["free_in_reserved_mb"] for t in trace]
                    ctx.curve(f"free in reserved ({variant})", steps, free, x_label="step", y_label="MB", series=kind)
            finally:
                if variant == "expandable_segments":
                    A.set_expandable(A.env_expandable())
        ctx.table("fragmentation per schedule", rows)
        got = {(r["variant"], r["schedule"]): r for r in rows}
        inc, dec = got.get(("default", "increasing")), got.get(("default", "decreasing"))
        if inc and dec:
            ctx.metric("peak_reserved_increasing_over_decreasing", inc["peak_reserved_mb"] / dec["peak_reserved_mb"])
        if (exp := got.get(("expandable_segments", "increasing"))) and inc and inc["peak_free_mb"] > 0:
            ctx.metric("peak_free_expandable_over_default", exp["peak_free_mb"] / inc["peak_free_mb"])

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
