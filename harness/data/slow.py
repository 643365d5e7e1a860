"""Slow synthetic sources for the data-loading drills: every item costs a fixed wait, as a file
read or a network fetch does, and is seeded by its index, so a loader's output can be checked
bit for bit against reading the source directly.

The wait is a ``time.sleep``, which releases the GIL: a background thread (a prefetcher) or a
worker process overlaps it with the consumer's work exactly as it would overlap real I/O.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info


class SlowSource:
    """Re-iterable batches: yields ``(index, (batch, dim) float32 tensor seeded by seed + index)``
    for ``index`` in ``range(batches)``, after ``delay_s`` seconds each.

    ``fail_at`` raises ``RuntimeError("producer failed at batch i")`` instead of producing batch i
    (a producer error a loader must hand to its consumer). ``cfg`` is any object with ``batches``,
    ``batch`` and ``dim`` fields.
    """

    def __init__(self, cfg: Any, delay_s: float = 0.0, seed: int = 0, fail_at: int | None = None):
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


class SlowItems(Dataset):
    """A map-style data set: item i is ``(i, (features,) float32 seeded by i)`` after ``load_ms``
    milliseconds. ``cfg`` is any object with ``samples``, ``features`` and ``load_ms`` fields."""

    def __init__(self, cfg: Any):
        self.cfg = cfg

    def __len__(self) -> int:
        return self.cfg.samples

    def __getitem__(self, i: int):
        if self.cfg.load_ms:
            time.sleep(self.cfg.load_ms / 1e3)  # a file read: releases the GIL
        return i, torch.randn(self.cfg.features, generator=torch.Generator().manual_seed(i))


class ShardedStream(IterableDataset):
    """An iterable data set: the indices ``0 .. cfg.samples - 1`` in ``shards`` shards of consecutive
    indices. In a DataLoader worker it reads only shards ``w, w + W, ...`` (worker w of W, from
    ``get_worker_info``), so W workers together yield every index exactly once; without the
    split each worker would replay the whole stream (PyTorch docs, "torch.utils.data",
    "Multi-process data loading")."""

    shards = 6

    def __init__(self, cfg: Any):
        self.cfg = cfg

    def my_shards(self) -> range:
        """The shards this process reads: all of them outside a worker."""
        info = get_worker_info()
        return range(self.shards) if info is None else range(info.id, self.shards, info.num_workers)

    def __iter__(self):
        per = -(-self.cfg.samples // self.shards)  # ceil: the last shard is short
        for s in self.my_shards():
            yield from range(s * per, min((s + 1) * per, self.cfg.samples))
