"""m3 Dataloader with pinned memory and asynchronous transfers.

Compared, on one synthetic data set and the same consumer (a few matmuls per batch):

* ``pageable`` (baseline): ``DataLoader(pin_memory=False)``; each batch is copied with a
  plain ``.to(device)`` from pageable memory, then consumed. Copy and compute alternate.
* ``pinned_prefetch``: the host data sits in page-locked memory (pinned once up front, as
  a data set preloaded into RAM would be), the DataLoader runs with ``pin_memory=True``
  and :class:`harness.loader.PrefetchLoader` issues the copy of batch i+1 on a side stream
  (``non_blocking=True``) before batch i is consumed, from a background thread that keeps
  ``depth`` batches ready.
* raw host-to-device bandwidth (CUDA): ``dst.copy_(src)`` of 1 MiB .. 256 MiB from pinned
  and from pageable host memory (GB/s as items, not ``bytes``: HBM is the wrong ceiling).

Check: every batch arrives intact and in order, through both variants, with 0 and 2
DataLoader worker processes and a short last batch. Each batch carries its sample indices
(must be ``arange`` over the epoch, in order) and is checksummed on the device (float64
sum and a position-weighted sum, so a swapped pair of samples changes it) against
checksums computed from the host table, without copying the batch back. On CPU pinning
is unsupported (no accelerator): the prefetch variant then prefetches on its thread
without pinning, and the side-stream copy path is recorded as skipped ("needs cuda").

Lesson: a copy from pageable memory is staged by the driver through its own pinned buffer
and blocks the host; from pinned memory the DMA engine reads host RAM directly and the copy
can hide behind the previous batch's compute (CUDA C++ Best Practices Guide, "Pinned
Memory"; PyTorch docs, "Use pinned memory buffers"). So this pays only where there is a
copy to hide: on a GPU the
pinned host-to-device copy approaches the PCIe rate (PCIe Gen5 x16: 64 GB/s raw per
direction, PCI-SIG) while a pageable one runs at a fraction of it, and the prefetching
loader costs about max(copy, compute) per batch instead of their sum. On a CPU device
pinning and host-to-device copies do not exist, so the two variants should cost the same
(the claims check both sides).
"""

from __future__ import annotations

import dataclasses
import multiprocessing

import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from harness import Comparison, Prepared, task
from harness.batch_transfer import Consumer, MoveEach, TableSet, checksum, position_weights
from harness.claims import speedup, time_ratio
from harness.loader import PrefetchLoader, pin_supported
from harness.mutants import Mutant


@dataclasses.dataclass(frozen=True)
class LoaderConfig:
    """One epoch through a DataLoader over ``samples`` rows of ``features`` float32 values."""

    samples: int
    """rows per epoch (the last batch is short when ``batch`` does not divide it)"""
    features: int
    """float32 values per sample; a multiple of 256 (the consumer views batches as (-1, 256))"""
    batch: int
    """samples per batch"""
    workers: int = 0
    """DataLoader worker processes (0: load in the consumer's process)"""
    depth: int = 2
    """batches the PrefetchLoader keeps ready"""
    compute_iters: int = 1
    """matmuls (rows, 256) @ (256, 256) the consumer runs per batch: the work a copy can hide behind"""
    table_rows: int = 4096
    """distinct host rows; sample i is row i % table_rows (bounds host RAM at large sizes)"""

    def label(self) -> str:
        return (
            f"n={self.samples},f={self.features},B={self.batch},workers={self.workers},"
            f"depth={self.depth},iters={self.compute_iters}"
        )


@dataclasses.dataclass(frozen=True)
class CopyConfig:
    """One raw host-to-device copy (CUDA only)."""

    mib: int
    """bytes copied, in MiB (2**20 bytes)"""

    def label(self) -> str:
        return f"H2D {self.mib} MiB"


def usable_workers(config: LoaderConfig) -> int:
    """``config.workers``, or 0 inside a daemonic process (it may not start DataLoader workers)."""
    return 0 if multiprocessing.current_process().daemon else config.workers


def make_table(config: LoaderConfig, seed: int, pin: bool) -> torch.Tensor:
    if config.features % 256:
        raise ValueError(f"features must be a multiple of 256, got {config.features}")
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(min(config.table_rows, config.samples), config.features, generator=g)  # (R, F)
    return table.pin_memory() if pin else table


# -- wrong loaders (the mutants) -----------------------------------------------------------------
def _wrong_loader(edit):
    """WRONG: the pinned_prefetch loader with its batches edited."""

    def loader(self, variant, config, device, seed):
        inner = PinnedLoader.loader(self, variant, config, device, seed)
        return edit(list(inner)) if variant == "pinned_prefetch" else inner

    return {"loader": loader}


def _reorder(bs):
    return [bs[1], bs[0], *bs[2:]]


def _drop_last(bs):
    return bs[:-1]


def _swap_rows(bs):
    ids, x = bs[2]
    return [*bs[:2], (ids, x[[1, 0, *range(2, x.shape[0])]]), *bs[3:]]


def _corrupt(bs):
    ids, x = bs[0]
    x = x.clone()
    x[3, 7] += 1e-3
    return [(ids, x), *bs[1:]]


_H2D = "a pinned 256 MiB host-to-device copy >= 2x the pageable one (the DMA engine reads host RAM)"
_EPOCH = "the pinned prefetching loader's epoch >= 1.2x the plain one (copies hidden behind compute)"
_CPU = "on a CPU device there is nothing to hide: the prefetching loader's epoch <= 1.1x the plain one"


@task("m3.pinned_loader", seed="m3", title="dataloader with pinned memory and async transfers")
class PinnedLoader(Comparison):
    __doc__ = __doc__
    variants = ("pageable", "pinned_prefetch")
    gpu_check = True
    sizes = {
        # 50 = 6 batches of 8 and a short one of 2; 20 samples of a 16-row table wrap around
        "tiny": [LoaderConfig(50, 256, 8, workers=0, table_rows=16), LoaderConfig(50, 512, 8, workers=2, depth=1)],
        "cpu": [LoaderConfig(4096, 1024, 512, compute_iters=1)],
        # 32 MiB batches; a 4096-row table (64 MiB) serves every batch as a contiguous view
        "gpu": [LoaderConfig(16 * 2048, 4096, 2048, compute_iters=8), CopyConfig(1), CopyConfig(16), CopyConfig(256)],
    }

    claims = (
        speedup("pinned_prefetch", over="pageable", at_least=2.0, config="H2D 256 MiB", device="cuda", text=_H2D),
        speedup("pinned_prefetch", over="pageable", at_least=1.2, config="n=", device="cuda", text=_EPOCH),
        time_ratio("pinned_prefetch", to="pageable", at_most=1.1, config="n=", device="cpu", text=_CPU),
    )
    mutants = (
        Mutant("reorders_batches", "batches 0, 1 swapped", _wrong_loader(_reorder), match="carries samples [8, 9"),
        Mutant("swaps_samples", "2 samples swapped", _wrong_loader(_swap_rows), match="prefetch: batch checksums"),
        Mutant("drops_short_batch", "short last batch dropped", _wrong_loader(_drop_last), match="48 samples arrived"),
        Mutant("corrupts_a_value", "one value off by 1e-3", _wrong_loader(_corrupt), match="checksums"),
    )

    def loader(self, variant: str, config: LoaderConfig, device, seed: int):
        """An iterable of (indices, batch on ``device``) for one epoch of ``variant``."""
        pinned = variant == "pinned_prefetch" and pin_supported() and torch.device(device).type == "cuda"
        # a pinned table serves pinned views directly; worker processes return batches through
        # shared memory instead, so with workers the DataLoader's pin thread pins each batch
        ds = TableSet(make_table(config, seed, pin=pinned and config.workers == 0), config.samples)
        sampler = BatchSampler(SequentialSampler(ds), config.batch, drop_last=False)
        dl = DataLoader(ds, batch_size=None, sampler=sampler, num_workers=usable_workers(config), pin_memory=pinned)
        if variant == "pageable":
            return MoveEach(dl, device)
        return PrefetchLoader(dl, device=device, depth=config.depth, pin=pinned)

    def check(self, ctx) -> None:
        ctx.require("cuda", part="pinned host memory and side-stream H2D copies")
        if any(isinstance(c, LoaderConfig) and c.workers != usable_workers(c) for c in ctx.configs):
            ctx.skip_part(
                "DataLoader worker processes (those configs run with workers=0)",
                "this task runs in a daemonic process (the harness's isolated worker), which may not "
                "start children; tests/test_loader.py covers workers",
            )
        for config in [c for c in ctx.configs if isinstance(c, LoaderConfig)]:
            table = make_table(config, ctx.rng_seed, pin=False)
            w = position_weights(config.features, ctx.device)
            for v in self.variants:
                where = f"{v} [{config.label()}]"
                seen = 0
                for b, (ids, x) in enumerate(self.loader(v, config, ctx.device, ctx.rng_seed)):
                    n = min(config.batch, config.samples - seen)
                    msg = f"{where}: batch {b} carries samples {ids.tolist()[:4]}..., expected {seen}..{seen + n - 1}"
                    ctx.expect(torch.equal(ids.cpu(), torch.arange(seen, seen + n)), msg, name=f"{v}: batches in order")
                    msg = f"{where}: batch on {x.device}, not {ctx.device}"
                    ctx.expect(x.device.type == ctx.device.type, msg, name=f"{v}: batches on the device")
                    expected = checksum(table[torch.arange(seen, seen + n) % table.shape[0]], w.cpu())
                    at = f"{where}, batch {b}"
                    ctx.assert_close(checksum(x, w).cpu(), expected, name=f"{v}: batch checksums", where=at)
                    seen += n
                msg = f"{where}: {seen} samples arrived, expected {config.samples}"
                ctx.expect(seen == config.samples, msg, name=f"{v}: every sample arrives")

    # -- bench ---------------------------------------------------------------------------------
    def _epoch(self, ctx, impl: str, config: LoaderConfig):
        """(one-epoch closure, its loader) for ``impl``."""
        loader = self.loader(impl, config, ctx.device, ctx.rng_seed)
        consume = Consumer(config.compute_iters, ctx.device, ctx.rng_seed)

        def epoch() -> None:
            for _, x in loader:
                consume(x)

        return epoch, loader

    def prepare(self, ctx, impl: str, config) -> Prepared:
        if isinstance(config, CopyConfig):
            n = config.mib * 2**20
            src = torch.randint(0, 256, (n,), dtype=torch.uint8, generator=torch.Generator().manual_seed(ctx.rng_seed))
            if impl == "pinned_prefetch":
                src = src.pin_memory()
            dst = torch.empty(n, dtype=torch.uint8, device=ctx.device)
            return Prepared(fn=lambda: dst.copy_(src, non_blocking=True), items=n / 1e9, item_unit="GB")
        epoch, _ = self._epoch(ctx, impl, config)
        return Prepared(fn=epoch, items=config.samples, item_unit="samples")

    def bench(self, ctx) -> None:
        if not pin_supported():
            ctx.note(
                "pin_memory is unsupported here (no accelerator): pinned_prefetch prefetches on a "
                "background thread without pinning; copies to the CPU device are no-ops."
            )
        mode = "warm" if ctx.is_cuda else None
        has_cuda = ctx.require("cuda", part="H2D GB/s pinned vs pageable (1 MiB .. 256 MiB)")
        for config in ctx.configs:
            if isinstance(config, CopyConfig):
                if not has_cuda or not ctx.is_cuda:
                    continue
                for v in self.variants:
                    ms = ctx.measure(v, self.prepare(ctx, v, config), config=config, mode=mode).median_ms
                    kind = "pinned" if v == "pinned_prefetch" else "pageable"
                    ctx.metric(f"h2d_gbps_{kind}_{config.mib}mib", config.mib * 2**20 / (ms / 1e3) / 1e9)
                continue
            medians = {}
            for v in self.variants:
                epoch, loader = self._epoch(ctx, v, config)
                epoch()  # one warm epoch: worker start-up, BLAS/cuBLAS handles, allocator, pinning
                ctx.sync()
                extra = (
                    {"consumer_wait_ms_per_epoch": loader.wait_s * 1e3} if isinstance(loader, PrefetchLoader) else {}
                )
                prepared = Prepared(fn=epoch, items=config.samples, item_unit="samples")
                medians[v] = ctx.measure(v, prepared, config=config, mode=mode, **extra).median_ms
            ctx.metric("epoch_speedup_pinned_prefetch", medians["pageable"] / medians["pinned_prefetch"])
