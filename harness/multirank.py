"""What a task that launches ranks (:func:`harness.launch.launch`) does around them: pick the
backend its check and its bench run on, and record step times where a step ends with its
slowest rank.

On CPU the ranks are processes talking gloo; on CUDA each rank needs its own GPU for NCCL.
A check's math does not depend on the device, so with too few GPUs it runs on CPU ranks
(and says so); a bench on CUDA measures GPUs or nothing, so it skips instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from harness.launch import resolve_backend
from harness.timing import Measurement
from harness.train import record_samples

if TYPE_CHECKING:
    from harness.context import Context


def world_backend(ctx: Context, world: int) -> str | None:
    """gloo on CPU; on CUDA ``"nccl"`` when ``world`` GPUs are present, else None."""
    if not ctx.is_cuda:
        return "gloo"
    return "nccl" if resolve_backend("auto", world) == "nccl" else None


def check_backend(ctx: Context, world: int) -> str:
    """:func:`world_backend`, falling back to gloo CPU ranks (with a note) where NCCL lacks GPUs."""
    backend = world_backend(ctx, world)
    if backend is None:
        ctx.note(f"fewer than {world} GPUs: the check ran on {world} CPU processes with gloo")
    return backend or "gloo"


def bench_backend(ctx: Context, world: int, part: str) -> str | None:
    """:func:`world_backend`; None (and ``part`` skipped, naming the GPUs found) where NCCL lacks GPUs."""
    backend = world_backend(ctx, world)
    if backend is None:
        ctx.skip_part(part, f"needs {world} GPUs for NCCL, found {torch.cuda.device_count()}")
    return backend


def record_slowest_rank(
    ctx: Context,
    impl: str,
    per_rank: Sequence[Sequence[float]],
    *,
    backend: str,
    config: Any = None,
    items: float | None = None,
    item_unit: str = "samples",
) -> Measurement:
    """Record step times (ms) measured inside the ranks: ``per_rank[r][i]`` is step i on rank r,
    and step i takes ``max_r per_rank[r][i]`` (a step ends when its slowest rank does).

    Raises:
        ValueError: no steps.
    """
    step_ms = [max(t) for t in zip(*per_rank)]
    mode = f"wall-clock in rank, {backend}"
    return record_samples(ctx, impl, step_ms, config=config, items=items, item_unit=item_unit, mode=mode)
