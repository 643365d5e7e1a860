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
  and from pageable host memory (``GB_per_s`` = 10^9 bytes/s; not set as ``bytes`` because
  % of the HBM copy bandwidth would be the wrong ceiling for a PCIe transfer).

Check: every batch arrives intact and in order, through both variants, with 0 and 2
DataLoader worker processes and a short last batch. Each batch carries its sample indices
(must be ``arange`` over the epoch, in order) and is checksummed on the device (float64
sum and a position-weighted sum, so a swapped pair of samples changes it) against
checksums computed from the host table, without copying the batch back. On CPU pinning
is unsupported (no accelerator): the prefetch variant then prefetches on its thread
without pinning, and the side-stream copy path is recorded as skipped ("needs cuda").

Why: a copy from pageable memory is staged by the driver through its own pinned buffer
and blocks the host, so it can overlap nothing; from pinned memory the DMA engine reads
host RAM directly and the copy is asynchronous, so it can hide behind the previous
batch's compute (CUDA C++ Best Practices Guide, "Pinned Memory"; PyTorch docs, "Use
pinned memory buffers").

Figures. This CPU (cpu size: 8 batches of 512 x 1024 float32, one matmul layer per batch;
``OMP_NUM_THREADS=1``, 2026-11-29, load near 7 from other jobs): there is nothing to hide
here. Loading alone takes 2 ms an epoch against 130 ms of consuming, and pinning and
host-to-device copies do not exist on a CPU device. The harness's measurements (one
variant after the other) put pinned_prefetch 1.2-1.35x ahead (pageable 135-186 ms,
prefetch 102-137 ms an epoch), but epochs timed alternately in one process came out equal
(123-172 ms against 118-148 ms): that gap was the shared machine, not the loader.
H200 (gpu size): not measured yet; the prediction is pinned H2D near the PCIe Gen5 x16
rate (~50 GB/s) against a quarter to a half of that from pageable memory, and the
prefetching loader near max(copy, compute) per batch instead of their sum.
"""

from __future__ import annotations

import dataclasses
import multiprocessing

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

from harness import Comparison, Prepared, task
from harness.loader import PrefetchLoader, pin_supported


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


class TableSet(Dataset):
    """Sample i = (i, table[i % rows]); indexed by a *list* of indices, it returns a whole batch.

    Used with ``batch_size=None`` and a BatchSampler as sampler, so one ``__getitem__`` call
    builds one batch: a view of the table for a contiguous run of rows (no host copy), an
    ``index_select`` otherwise.
    """

    def __init__(self, table: torch.Tensor, samples: int):
        self.table, self.samples = table, samples

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.as_tensor(idx, dtype=torch.int64)  # (B,)
        rows = self.table.shape[0]
        start = idx[0] % rows
        if start + len(idx) <= rows and idx[-1] - idx[0] == len(idx) - 1:
            return ids, self.table[start : start + len(idx)]  # (B, F) view: no copy
        return ids, self.table.index_select(0, ids % rows)  # (B, F)


def make_table(config: LoaderConfig, seed: int, pin: bool) -> torch.Tensor:
    if config.features % 256:
        raise ValueError(f"features must be a multiple of 256, got {config.features}")
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(min(config.table_rows, config.samples), config.features, generator=g)  # (R, F)
    return table.pin_memory() if pin else table


def position_weights(features: int, device) -> torch.Tensor:
    """Weights 1 + (k % 251) / 251 over a sample's values: a permutation changes the weighted sum."""
    return 1.0 + (torch.arange(features, device=device, dtype=torch.float64) % 251) / 251


def checksum(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(B, F) -> (2,) float64: plain sum and a sum weighted by global position (sample-major)."""
    xd = x.to(torch.float64)
    row_w = torch.arange(1, x.shape[0] + 1, device=x.device, dtype=torch.float64)[:, None]  # (B, 1)
    return torch.stack([xd.sum(), (xd * w[None, :] * row_w).sum()])


class Consumer:
    """The 'training step' per batch: ``compute_iters`` matmuls of (B*F/256, 256) @ (256, 256)."""

    def __init__(self, config: LoaderConfig, device, seed: int):
        g = torch.Generator().manual_seed(seed + 1)
        self.w = (torch.randn(256, 256, generator=g) / 16).to(device)
        self.iters = config.compute_iters
        self.acc = torch.zeros((), device=device)

    def __call__(self, x: torch.Tensor) -> None:
        y = x.view(-1, 256)  # (B * F / 256, 256)
        for _ in range(self.iters):
            y = torch.tanh(y @ self.w)
        self.acc += y[0, 0]  # keep a dependency on the result, no host sync


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

    def loader(self, variant: str, config: LoaderConfig, device, seed: int):
        """An iterable of (indices, batch on ``device``) for one epoch of ``variant``."""
        pinned = variant == "pinned_prefetch" and pin_supported() and torch.device(device).type == "cuda"
        # a pinned table serves pinned views directly; worker processes return batches through
        # shared memory instead, so with workers the DataLoader's pin thread pins each batch
        ds = TableSet(make_table(config, seed, pin=pinned and config.workers == 0), config.samples)
        sampler = BatchSampler(SequentialSampler(ds), config.batch, drop_last=False)
        dl = DataLoader(ds, batch_size=None, sampler=sampler, num_workers=usable_workers(config), pin_memory=pinned)
        if variant == "pageable":
            return _MoveEach(dl, device)
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
                batches = 0
                seen = 0
                for b, (ids, x) in enumerate(self.loader(v, config, ctx.device, ctx.rng_seed)):
                    n = min(config.batch, config.samples - seen)
                    ctx.expect(
                        torch.equal(ids.cpu(), torch.arange(seen, seen + n)),
                        f"{where}: batch {b} carries samples {ids.tolist()[:4]}..., expected "
                        f"{seen}..{seen + n - 1} in order",
                        name=f"{v}: batches in order",
                    )
                    ctx.expect(
                        x.device.type == ctx.device.type,
                        f"{where}: batch on {x.device}, not {ctx.device}",
                        name=f"{v}: batches on the device",
                    )
                    expected = checksum(table[torch.arange(seen, seen + n) % table.shape[0]], w.cpu())
                    ctx.assert_close(
                        checksum(x, w).cpu(), expected, name=f"{v}: batch checksums", where=f"{where}, batch {b}"
                    )
                    seen += n
                    batches += 1
                ctx.expect(
                    seen == config.samples,
                    f"{where}: {seen} samples arrived, expected {config.samples}",
                    name=f"{v}: every sample arrives",
                )

    # -- bench ---------------------------------------------------------------------------------
    def _epoch(self, ctx, impl: str, config: LoaderConfig):
        """(one-epoch closure, its loader) for ``impl``."""
        loader = self.loader(impl, config, ctx.device, ctx.rng_seed)
        consume = Consumer(config, ctx.device, ctx.rng_seed)

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


class _MoveEach:
    """The baseline: iterate a DataLoader and copy each batch with a plain ``.to(device)``."""

    def __init__(self, dl: DataLoader, device):
        self.dl, self.device = dl, torch.device(device)

    def __iter__(self):
        for ids, x in self.dl:
            yield ids, x.to(self.device)
