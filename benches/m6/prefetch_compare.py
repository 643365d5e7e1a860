"""m6 Throughput with vs without prefetching.

Compared: batches/s of one epoch from a slow producer (``harness.data.slow.SlowSource``: each
batch takes ``delay`` seconds to arrive, as from a disk or a network share, set equal to the
consumer's measured step time) fed to a compute-bound consumer (matmuls), read directly and
through ``harness.loader.PrefetchLoader``, which runs the producer on a background thread
``depth`` (2) batches ahead.

Check: the same batches arrive in the same order (indices and bit-identical tensors) with and
without prefetching, for depth 1, 2 and 4; a producer's exception reaches the consumer after the
batches before it; leaving the loop early (``break``) stops the background thread.

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
import time

import torch

from harness import Comparison, Prepared, task
from harness.claims import speedup
from harness.data.slow import SlowSource
from harness.loader import PrefetchLoader, prefetch_threads
from harness.mutants import Mutant
from kernels.loading.wrong import DropsLast, Reorders


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
            "drops_last", "the prefetcher loses the last batch", {"loader_cls": DropsLast}, match="arrived, expected"
        ),
        Mutant(
            "reorders", "the prefetcher swaps neighbouring batches", {"loader_cls": Reorders}, match="arrived, expected"
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
        ctx.expect(
            not prefetch_threads(wait_s=5.0),
            "a PrefetchLoader thread is still alive after break",
            name="break stops the thread",
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

        return Prepared(fn=epoch, items=config.batches, item_unit="batches", waits=True)  # waits on the producer
