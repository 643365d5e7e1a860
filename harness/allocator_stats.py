"""Fragmentation of PyTorch's CUDA caching allocator, read from ``torch.cuda.memory_stats()``.

* :func:`make_schedule`: one multiset of batch sizes in increasing, decreasing or seeded
  random order, so schedules differ only in order;
* :func:`fragmentation` / :func:`summarize`: free-in-reserved (reserved - allocated: bytes
  the allocator keeps in its segments that no tensor uses), its ratio to reserved and the
  inactive split bytes, per step and over a schedule (PyTorch docs, "CUDA semantics: memory
  management" and ``torch.cuda.memory_stats``);
* :func:`set_expandable`: switch ``expandable_segments`` at run time, where this torch allows it.

Used by m4.allocator_fragmentation; everything but :func:`set_expandable` runs without a GPU.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

SCHEDULES = ("increasing", "decreasing", "random")
MB = 1e6


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


REQUIRED = ("reserved_bytes.all.current", "allocated_bytes.all.current")


def fragmentation(stats: Mapping[str, Any]) -> dict[str, float]:
    """Fragmentation figures of one ``torch.cuda.memory_stats()`` dict.

    Returns (MB = 10**6 bytes): ``reserved_mb``, ``allocated_mb``, ``free_in_reserved_mb`` =
    reserved - allocated, ``frag_ratio`` = free_in_reserved / reserved (0 when nothing is
    reserved), ``inactive_split_mb`` (0 when the key is absent).

    Raises:
        ValueError: a required key is missing (pass ``torch.cuda.memory_stats()``), or
            allocated exceeds reserved (stats from two different moments).
    """
    missing = [k for k in REQUIRED if k not in stats]
    if missing:
        raise ValueError(f"stats lack {missing}; pass the dict torch.cuda.memory_stats() returns")
    reserved = float(stats["reserved_bytes.all.current"])
    allocated = float(stats["allocated_bytes.all.current"])
    if allocated > reserved:
        raise ValueError(f"allocated ({allocated:.0f} B) exceeds reserved ({reserved:.0f} B): inconsistent stats")
    free = reserved - allocated
    return {
        "reserved_mb": reserved / MB,
        "allocated_mb": allocated / MB,
        "free_in_reserved_mb": free / MB,
        "frag_ratio": free / reserved if reserved else 0.0,
        "inactive_split_mb": float(stats.get("inactive_split_bytes.all.current", 0)) / MB,
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


def env_expandable() -> bool:
    conf = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")
    return "expandable_segments:true" in conf.replace(" ", "").lower()


def set_expandable(on: bool) -> str | None:
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


class Step:
    """One SGD step of an MLP on a (B, width) batch: allocations scale with B.

    ``config`` has ``width`` and ``layers`` (hidden layers of width x width weights).
    """

    def __init__(self, config: Any, device, seed: int):
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
