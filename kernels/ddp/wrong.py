"""Wrong bucket plans, a wrong comm hook and wrong synchronised batch norms: the mutants of
m5.bucket_tuning and m5.ddp_resnet50 (each one a plausible mistake about DDP; see
``kernels.ddp.buckets`` for the right plan, ``kernels.ddp.sync_bn`` for the right BN).

Planners take the parameter bytes in registration order and ``bucket_cap_mb`` (MiB, None for
DDP's default) and return each bucket's bytes. ``sum_hook`` and the BN converters are module
level so that spawned ranks import them by reference.
"""

from __future__ import annotations

import torch.distributed as dist
from torch import nn

from kernels.ddp import sync_bn
from kernels.ddp.buckets import bucket_bytes, caps_bytes, plan_buckets


def buckets_forward_order(sizes: list[int], cap_mb: float | None) -> list[int]:
    """WRONG: buckets filled first layer first (the order of registration, not of readiness)."""
    return bucket_bytes(sizes, plan_buckets(sizes, cap_mb))


def buckets_never_overshoot(sizes: list[int], cap_mb: float | None) -> list[int]:
    """WRONG: a new bucket starts *before* a tensor would push the open one past the cap."""
    first, cap = caps_bytes(cap_mb)
    out: list[int] = []
    size = 0
    for s in sizes[::-1]:
        if size and size + s > (first if not out else cap):
            out.append(size)
            size = 0
        size += s
    return out + [size] if size else out


def buckets_no_small_first(sizes: list[int], cap_mb: float | None) -> list[int]:
    """WRONG: forgets DDP's 1 MiB first bucket under the default cap (plans 25 MiB for every one)."""
    ready = sizes[::-1]  # last layer first, as DDP
    return bucket_bytes(ready, plan_buckets(ready, 25.0 if cap_mb is None else cap_mb))


def sum_hook(state, bucket):
    """WRONG: a comm hook that sums the buckets and never divides by W."""
    fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


def keep_plain_bn(model: nn.Module) -> nn.Module:
    """WRONG: leaves per-rank BatchNorm in place and calls it synchronised."""
    return model


def local_variance_bn(model: nn.Module) -> nn.Module:
    """WRONG: global mean, but each rank's variance around its own mean, averaged."""
    return sync_bn.convert(model, sync_bn.LocalVarianceBatchNorm)
