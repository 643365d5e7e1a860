"""m6 Throughput with vs without prefetching.

Compared: one epoch of batches from a slow producer (each batch takes ``delay`` seconds to
arrive, as from a disk or a network share; the wait releases the GIL) fed to a compute-bound
consumer (matmuls), read directly and through ``harness.loader.PrefetchLoader``, which runs
the producer on a background thread ``depth`` batches ahead.

Check:

* the same batches arrive, in the same order, none missing or repeated, with and without
  prefetching, for depth 1, 2 and 4 (batch indices and bit-identical tensors);
* an exception raised by the producer reaches the consumer, after the batches before it;
* leaving the loop early (``break``) stops the background thread (none left alive).

Bench: batches/s of the epoch without and with prefetching (depth 2), the producer's delay
set equal to the consumer's measured step time.

Lesson: without prefetching the step time is producer + consumer; with it, the two overlap
and the step time tends to max(producer, consumer), so equal times approach a 2x gain and
a producer much faster (or slower) than the consumer leaves little to win. The same idea is
``DataLoader(num_workers=k, prefetch_factor=p)`` (p batches per worker fetched ahead in
worker processes) and, on a GPU, copying batch i+1 while batch i computes (PyTorch docs,
"torch.utils.data"; NVIDIA DALI's documentation describes the same pipelining). A queue
bounded by ``depth`` keeps memory finite; a prefetcher must keep order, deliver the last
batch, re-raise the producer's errors and stop its thread when the consumer leaves.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import torch

from harness import Comparison, Prepared, task
from harness.claims import speedup
from harness.loader import PrefetchLoader
from harness.mutants import Mutant


@dataclasses.dataclass(frozen=True)
class PrefetchConfig:
    """An epoch of ``batches`` (B, D) batches and a consumer of ``matmuls`` (B, D) @ (D, D) per batch."""

    batches: int
    """batches per epoch"""
    batch: int
    """B: rows per batch"""
    dim: int
    """D: features per row (and the consumer's square weight)"""
    matmuls: int = 4
    """consumer matmuls per batch (its compute time)"""

    def label(self) -> str:
        return f"N={self.batches},B={self.batch},D={self.dim}"


class SlowSource:
    """Re-iterable: yields ``(index, (B, D) float32 tensor seeded by index)`` after ``delay_s`` each.

    ``fail_at`` raises ``RuntimeError`` instead of producing that batch.
    """

    def __init__(self, cfg: PrefetchConfig, delay_s: float = 0.0, seed: int = 0, fail_at: int | None = None):
        self.cfg, self.delay_s, self.seed, self.fail_at = cfg, delay_s, seed, fail_at

    def __len__(self) -> int:
        return self.cfg.batches

    def __iter__(self):
        for i in range(self.cfg.batches):
            if self.delay_s:
                time.sleep(self.delay_s)  # I/O-like wait: releases the GIL
            if i == self.fail_at:
                raise RuntimeError(f"producer failed at batch {i}")
            g = torch.Generator().manual_seed(self.seed + i)
            yield i, torch.randn(self.cfg.batch, self.cfg.dim, generator=g)


# -- wrong versions (the check must reject each) -------------------------------------------
class _DropsLast(PrefetchLoader):
    def __iter__(self):
        it = super().__iter__()
        prev = next(it, None)
        for b in it:  # hands out one batch behind and never the last
            yield prev
            prev = b


class _Reorders(PrefetchLoader):
    def __iter__(self):
        held = None
        for b in super().__iter__():  # swaps neighbours, as a pool of racing threads can
            if held is None:
                held = b
            else:
                yield b
                yield held
                held = None
        if held is not None:
            yield held


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "PrefetchLoader" and t.is_alive()]


@task("m6.prefetch_compare", seed="m6", title="throughput with vs without prefetching")
class PrefetchCompare(Comparison):
    __doc__ = __doc__
    variants = ("no_prefetch", "prefetch")
    sizes = {
        "tiny": PrefetchConfig(batches=7, batch=4, dim=8),
        "cpu": PrefetchConfig(batches=16, batch=64, dim=256),
        "gpu": PrefetchConfig(batches=32, batch=256, dim=1024),
    }
    claims = (
        speedup(
            "prefetch",
            over="no_prefetch",
            at_least=1.3,
            text="prefetching >= 1.3x the batches/s when producer and consumer take comparable time",
        ),
    )
    loader_cls = PrefetchLoader
    mutants = (
        Mutant(
            "drops_last", "the prefetcher loses the last batch", {"loader_cls": _DropsLast}, match="arrived, expected"
        ),
        Mutant(
            "reorders",
            "the prefetcher swaps neighbouring batches",
            {"loader_cls": _Reorders},
            match="arrived, expected",
        ),
    )

    def check(self, ctx):
        cfg = ctx.configs[0]
        src = SlowSource(cfg, seed=ctx.rng_seed)
        want = list(src)
        for depth in (1, 2, 4):
            got = list(self.loader_cls(src, depth=depth))
            same = [i for i, _ in got] == [i for i, _ in want] and all(
                torch.equal(a, b) for (_, a), (_, b) in zip(got, want)
            )
            ctx.expect(
                same,
                f"depth {depth}: batches {[i for i, _ in got]} arrived, expected {[i for i, _ in want]}",
                name="same batches with and without prefetching",
            )
        seen = []

        def consume():
            for i, _ in self.loader_cls(SlowSource(cfg, fail_at=3), depth=2):
                seen.append(i)

        ctx.expect_raises(RuntimeError, consume, match="failed at batch 3", name="producer error propagates")
        ctx.expect(
            seen == [0, 1, 2],
            f"before the error the consumer saw {seen}, expected [0, 1, 2]",
            name="batches before the error",
        )
        for k, _ in enumerate(self.loader_cls(SlowSource(cfg, delay_s=0.001), depth=2)):
            if k == 1:
                break
        deadline = time.monotonic() + 5.0  # the thread notices the stop flag within ~50 ms
        while _prefetch_threads() and time.monotonic() < deadline:
            time.sleep(0.01)
        ctx.expect(
            not _prefetch_threads(), "a PrefetchLoader thread is still alive after break", name="break stops the thread"
        )

    def prepare(self, ctx, impl, config):
        g = ctx.generator()
        w = torch.randn(config.dim, config.dim, generator=g).to(ctx.device) / config.dim**0.5

        def consume(x):
            for _ in range(config.matmuls):
                x = torch.tanh(x @ w)
            return x

        delays = self.__dict__.setdefault("_delays", {})
        if config not in delays:  # the consumer's step time sets the producer's, once for both variants
            x0, times = torch.randn(config.batch, config.dim, generator=g).to(ctx.device), []
            for _ in range(5):
                t0 = time.perf_counter()
                consume(x0)
                ctx.sync()
                times.append(time.perf_counter() - t0)
            delays[config] = sorted(times)[2]
        src = SlowSource(config, delay_s=delays[config], seed=ctx.rng_seed)
        dev = ctx.device if ctx.is_cuda else None
        loader = self.loader_cls(src, device=dev, depth=2) if impl == "prefetch" else src

        def epoch():
            for _, x in loader:
                consume(x.to(ctx.device))
                ctx.sync()  # a step that reads its loss waits for the GPU; else launches alone overlap

        return Prepared(fn=epoch, items=config.batches, item_unit="batches")

    def bench(self, ctx):
        for config in ctx.configs:
            for impl in self.variants:
                ctx.measure(impl, self.prepare(ctx, impl, config), config=config, waits=True)
