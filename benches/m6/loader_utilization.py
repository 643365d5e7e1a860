"""m6 A dataloader that keeps the GPU >= 90 % busy.

Compared: batches/s of ``torch.utils.data.DataLoader`` with 0, 1 and 2 worker processes
(persistent, so starting them is not timed; pinned memory where this torch can pin) reading a data
set whose items take time to load (``harness.data.slow.SlowItems``: a sleep stands for a file
read); with a GPU, a GPU consumer fed through ``pin_memory`` and ``non_blocking`` copies while
``harness.gpu_monitor`` samples NVML's busy fraction. Checked: whole batches in sampler order for
several settings; each sample of a sharded stream once.

Lesson: with ``num_workers=0`` loading and the step run one after the other, so the GPU idles while
each batch loads; k workers load k batches at once (``prefetch_factor`` each ahead), and once
loading per batch / k is below the step time the GPU stays busy (the catalogue's target: >= 90 % of
NVML's samples with a kernel running). Workers are processes: each holds a copy of the data set, an
iterable data set must shard itself by worker (``get_worker_info``) or every worker replays the
whole stream (PyTorch docs, "torch.utils.data", "Multi-process data loading").
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.data import DataLoader

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.data.slow import ShardedStream, SlowItems
from harness.gpu_monitor import GpuMonitor
from harness.loader import FAST_START, peek_order, shutdown_workers
from harness.mutants import Mutant
from kernels.loading.wrong import UnshardedStream


@dataclasses.dataclass(frozen=True)
class LoaderConfig:
    """``samples`` items of ``features`` floats, ``load_ms`` to load each, batches of ``batch``."""

    samples: int
    """items in the data set (not a multiple of ``batch``: the last batch is short)"""
    batch: int
    """items per batch"""
    features: int = 64
    """floats per item"""
    load_ms: float = 0.0
    """time to load one item, ms (a sleep, like a file read)"""
    gpu_matmuls: int = 8
    """(B, F) @ (F, F) products per batch in the GPU consumer (its step time)"""

    def label(self) -> str:
        return f"N={self.samples},B={self.batch},load={self.load_ms}ms"


@task("m6.loader_utilization", seed="m6", title="a dataloader that keeps the GPU ≥90% busy")
class LoaderUtilization(Comparison):
    __doc__ = __doc__
    variants = ("workers_0", "workers_1", "workers_2")
    gpu_check = True  # the NVML part runs behind ctx.require("cuda", "nvml")
    sizes = {
        "tiny": LoaderConfig(samples=45, batch=8),
        "cpu": LoaderConfig(samples=128, batch=16, load_ms=1.0),
        "gpu": LoaderConfig(samples=8192, batch=256, features=4096, load_ms=0.02, gpu_matmuls=64),
    }
    time_limit_s = {"check": 600.0, "bench": 600.0, "run": 900.0}  # workers start slowly on a busy 2-core machine
    metrics = {"gpu_util_mean_pct": "mean NVML GPU-busy percent while the loader feeds the GPU, %"}
    claims = (
        speedup(
            "workers_2", over="workers_0", at_least=1.5, text="2 workers >= 1.5x the batches/s of 0 (I/O-bound items)"
        ),
        metric("gpu_util_mean_pct", ">=", 90.0, device="cuda", text="the loader keeps the GPU >= 90 % busy"),
    )
    stream_cls = ShardedStream
    drop_last = False
    mutants = (
        Mutant(
            "unsharded_stream",
            "the iterable data set ignores the worker it runs in",
            {"stream_cls": UnshardedStream},
            match="exactly once",
        ),
        Mutant("drop_last", "the short last batch is dropped", {"drop_last": True}, match="sampler order"),
    )

    def _loader(self, data, cfg, seed, **kw):
        sampler = torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(seed))
        kw.setdefault("multiprocessing_context", FAST_START if kw.get("num_workers") else None)  # workers only
        return DataLoader(data, batch_size=cfg.batch, sampler=sampler, drop_last=self.drop_last, **kw), sampler

    def check(self, ctx):
        cfg = ctx.configs[0]
        data = SlowItems(cfg)
        pin = ctx.require("cuda", part="pin_memory=True (page-locked memory needs a GPU)")
        settings = [
            {"num_workers": 0},
            {"num_workers": 2, "prefetch_factor": 1},
            {"num_workers": 2, "prefetch_factor": 4, "persistent_workers": True, "pin_memory": pin},
        ]
        for kw in settings:
            loader, sampler = self._loader(data, cfg, ctx.rng_seed, **kw)
            for epoch in range(2 if kw.get("persistent_workers") else 1):
                order = peek_order(sampler)  # the permutation this epoch draws
                got = [(idx.tolist(), x) for idx, x in loader]
                want = [order[i : i + cfg.batch] for i in range(0, len(order), cfg.batch)]
                ctx.expect(
                    [g for g, _ in got] == want,
                    f"{kw}, epoch {epoch}: {sum(len(g) for g, _ in got)} of {len(order)} indices, "
                    f"not in sampler order (last batches {[g for g, _ in got][-1:]}, expected {want[-1:]})",
                    name="whole batches in sampler order",
                )
                ok = all(torch.equal(x[j], data[i][1]) for idx, x in got for j, i in enumerate(idx))
                ctx.expect(ok, f"{kw}: a batch's rows are not its indices' items", name="rows match indices")
        stream = DataLoader(self.stream_cls(cfg), cfg.batch, num_workers=2, multiprocessing_context=FAST_START)
        seen = sorted(int(i) for b in stream for i in b)
        ctx.expect(
            seen == list(range(cfg.samples)),
            f"iterable, 2 workers: {len(seen)} items for {cfg.samples}, {len(seen) - len(set(seen))} repeated: "
            "each sample must arrive exactly once",
            name="iterable: each sample exactly once",
        )

    def prepare(self, ctx, impl, config):
        workers = int(impl.split("_")[1])
        kw = {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": ctx.is_cuda}
        loader, _ = self._loader(SlowItems(config), config, ctx.rng_seed, **kw)
        epoch, stop = lambda: self._epoch(ctx, loader), lambda: shutdown_workers(loader)  # stop: now, not at exit
        return Prepared(epoch, items=len(loader), item_unit="batches", teardown=stop, waits=True)

    def _epoch(self, ctx, loader, w=None, matmuls=0):
        """One pass over ``loader``: each batch copied to the device, then ``matmuls`` (B, F) @ (F, F) on it."""
        for _, x in loader:
            y = x.to(ctx.device, non_blocking=True)
            for _ in range(matmuls):  # the GPU consumer's step: enough work to be worth feeding
                y = torch.tanh(y @ w)
        ctx.sync()

    def bench(self, ctx):
        super().bench(ctx)  # every worker count, timed as work that waits by design (Prepared.waits)
        if not ctx.require("cuda", "nvml", part="GPU utilisation (NVML) while the loader feeds the GPU"):
            return
        cfg = ctx.configs[-1]
        kw = {"num_workers": 8, "pin_memory": True, "persistent_workers": True, "prefetch_factor": 4}
        loader, _ = self._loader(SlowItems(cfg), cfg, ctx.rng_seed, **kw)
        w = torch.randn(cfg.features, cfg.features, device=ctx.device) / cfg.features**0.5
        self._epoch(ctx, loader, w, cfg.gpu_matmuls)  # workers started and warm: the monitor sees the steady state
        with GpuMonitor(interval_s=0.05) as mon:
            for _ in range(5):
                self._epoch(ctx, loader, w, cfg.gpu_matmuls)
        shutdown_workers(loader)
        ctx.note(mon.report())
        for k, v in mon.summary().items():
            ctx.metric(k, v)
