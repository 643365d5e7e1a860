"""m6 A dataloader that keeps the GPU >= 90 % busy.

Compared: ``torch.utils.data.DataLoader`` reading a data set whose items take time to load
(a sleep stands for a file read; it releases the GIL) with 0, 1 and 2 worker processes,
persistent workers and pinned memory where this torch can pin.

Check:

* map-style: every batch arrives whole, in the sampler's order (a seeded permutation), with
  no index missing or repeated, for ``num_workers`` 0 and 2, ``prefetch_factor`` 1 and 4,
  ``persistent_workers`` (two epochs from the same workers) and ``pin_memory`` (with a GPU);
* iterable-style (a stream split into shards): with 2 workers every sample arrives exactly
  once: each worker reads only its own shards (``get_worker_info``).

Bench: batches/s against the worker count (persistent workers, so starting them is not
timed). With a GPU (``ctx.require("cuda", "nvml")``): a GPU consumer fed through
``pin_memory`` and ``non_blocking`` copies while ``harness.gpu_monitor`` samples NVML's
busy fraction.

Lesson: with ``num_workers=0`` loading and the step run one after the other, so the GPU idles
while each batch loads; k workers load k batches at once (``prefetch_factor`` each ahead),
and once loading per batch / k is below the step time the GPU stays busy (the catalogue's
target: >= 90 % of NVML's samples with a kernel running). Workers are processes: each holds
a copy of the data set, an iterable data set must shard itself by worker or every worker
replays the whole stream (PyTorch docs, "torch.utils.data", "Multi-process data loading").
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import time

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.mutants import Mutant

# The drills worker is a spawned process, so its default start method is spawn too: each
# DataLoader worker would re-import torch (seconds each on a busy machine). Forked workers
# start at once and never touch CUDA (the parent pins and copies).
_MP = "fork" if "fork" in mp.get_all_start_methods() else None


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


class SlowItems(Dataset):
    """Item i: ``(i, (features,) float32 seeded by i)`` after ``load_ms``."""

    def __init__(self, cfg: LoaderConfig):
        self.cfg = cfg

    def __len__(self) -> int:
        return self.cfg.samples

    def __getitem__(self, i: int):
        if self.cfg.load_ms:
            time.sleep(self.cfg.load_ms / 1e3)
        return i, torch.randn(self.cfg.features, generator=torch.Generator().manual_seed(i))


class ShardedStream(IterableDataset):
    """A stream of ``shards`` shards of consecutive indices; each worker reads shards w, w + W, ..."""

    shards = 6

    def __init__(self, cfg: LoaderConfig):
        self.cfg = cfg

    def my_shards(self) -> range:
        info = get_worker_info()
        return range(self.shards) if info is None else range(info.id, self.shards, info.num_workers)

    def __iter__(self):
        per = -(-self.cfg.samples // self.shards)
        for s in self.my_shards():
            yield from range(s * per, min((s + 1) * per, self.cfg.samples))


# -- wrong versions (the check must reject each) -------------------------------------------
class _UnshardedStream(ShardedStream):
    def my_shards(self) -> range:
        return range(self.shards)  # every worker replays the whole stream


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
    # worker processes start slowly on a busy 2-core machine
    time_limit_s = {"check": 600.0, "bench": 600.0, "run": 900.0}
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
            {"stream_cls": _UnshardedStream},
            match="exactly once",
        ),
        Mutant("drop_last", "the short last batch is dropped", {"drop_last": True}, match="sampler order"),
    )

    def _loader(self, data, cfg, seed, **kw):
        sampler = torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(seed))
        if kw.get("num_workers"):
            kw["multiprocessing_context"] = _MP
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
                state = sampler.generator.get_state()
                order = list(sampler)  # the permutation this epoch draws: same generator state
                sampler.generator.set_state(state)
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
        stream = self.stream_cls(cfg)
        loader = DataLoader(stream, batch_size=cfg.batch, num_workers=2, multiprocessing_context=_MP)
        seen = sorted(int(i) for b in loader for i in b)
        dup = len(seen) - len(set(seen))
        ctx.expect(
            seen == list(range(cfg.samples)),
            f"iterable data set with 2 workers: {len(seen)} items for {cfg.samples}, {dup} repeated: "
            "each sample must arrive exactly once",
            name="iterable: each sample exactly once",
        )

    def prepare(self, ctx, impl, config):
        workers = int(impl.split("_")[1])
        kw = {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": ctx.is_cuda}
        loader, _ = self._loader(SlowItems(config), config, ctx.rng_seed, **kw)

        def epoch():
            for _, x in loader:
                x.to(ctx.device, non_blocking=True)
            ctx.sync()

        def stop():
            it = loader._iterator  # the persistent workers' iterator: shut them down now, not at exit
            if it is not None and workers > 0:
                it._shutdown_workers()

        n = len(loader)
        return Prepared(fn=epoch, items=n, item_unit="batches", teardown=stop)

    def bench(self, ctx):
        for config in ctx.configs:
            for impl in self.variants:
                p = self.prepare(ctx, impl, config)
                try:
                    ctx.measure(impl, p, config=config, waits=True)
                finally:
                    p.teardown()
        if ctx.require("cuda", "nvml", part="GPU utilisation (NVML) while the loader feeds the GPU"):
            self._gpu_utilisation(ctx, ctx.configs[-1])

    def _gpu_utilisation(self, ctx, cfg):
        from harness.gpu_monitor import GpuMonitor

        kw = {"num_workers": 8, "pin_memory": True, "persistent_workers": True, "prefetch_factor": 4}
        loader, _ = self._loader(SlowItems(cfg), cfg, ctx.rng_seed, **kw)
        w = torch.randn(cfg.features, cfg.features, device=ctx.device) / cfg.features**0.5

        def epoch():
            for _, x in loader:
                y = x.to(ctx.device, non_blocking=True)
                for _ in range(cfg.gpu_matmuls):  # the step: enough work to be worth feeding
                    y = torch.tanh(y @ w)
            ctx.sync()

        epoch()  # workers started and warm: the monitor sees the steady state
        with GpuMonitor(interval_s=0.05) as mon:
            for _ in range(5):
                epoch()
        loader._iterator._shutdown_workers()
        ctx.note(mon.report())
        for k, v in mon.summary().items():
            ctx.metric(k, v)
