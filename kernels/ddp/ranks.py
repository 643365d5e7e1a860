"""What timed data-parallel ranks share: a barrier-aligned step timer."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.distributed as dist


def timed(fn: Callable[[], object], steps: int, warmup: int, device: torch.device) -> list[float]:
    """Milliseconds of each of ``steps`` calls of ``fn`` after ``warmup`` untimed ones.

    Every call starts after a ``dist.barrier()`` (all ranks start the step together) and,
    on CUDA, a synchronize; the clock stops after the device finished.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for i in range(warmup + steps):
        dist.barrier()
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return times
