"""Which gradients DistributedDataParallel all-reduces together: its bucket plan, by hand.

DDP copies gradients into flat buckets and all-reduces a bucket as soon as every gradient
in it is ready, so communication overlaps the rest of the backward pass (Li et al. 2020,
"PyTorch Distributed: Experiences on Accelerating Data Parallel Training", VLDB 13(12),
Sec. 3.2.3 "Gradient bucketing" and 3.2.4 "Overlap computation with communication").
The plan (``compute_bucket_assignment_by_size`` in torch's ``reducer.cpp``, rebuilt after
the first iteration from the order in which gradients actually became ready):

* walk the parameters in gradient-ready order (for a feed-forward net: the reverse of
  registration order, last layer first);
* add each parameter's gradient bytes to the open bucket, *then* close the bucket if its
  size reached the current limit (a bucket may overshoot the limit by one tensor);
* the first bucket's limit is ``first_cap`` and every later one's ``cap``. DDP sets
  ``first_cap`` to 1 MiB (``torch.distributed._DEFAULT_FIRST_BUCKET_BYTES``) only when
  ``bucket_cap_mb`` is left at its default of 25 MiB; an explicit ``bucket_cap_mb`` is used
  for every bucket. Sizes are in MiB (2**20 bytes), truncated to whole bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

MIB = 1024 * 1024
DEFAULT_CAP_MB = 25
DEFAULT_FIRST_BUCKET_BYTES = 1 * MIB


def caps_bytes(bucket_cap_mb: float | None) -> tuple[int, int]:
    """``(first_bucket_cap, bucket_cap)`` in bytes for DDP's ``bucket_cap_mb`` (None: the default).

    Raises:
        ValueError: a cap that is not > 0.
    """
    if bucket_cap_mb is None:
        return DEFAULT_FIRST_BUCKET_BYTES, DEFAULT_CAP_MB * MIB
    if not bucket_cap_mb > 0:
        raise ValueError(f"bucket_cap_mb must be > 0 MiB (or None for DDP's default), got {bucket_cap_mb}")
    cap = int(bucket_cap_mb * MIB)
    return cap, cap


def plan_buckets(sizes_bytes: Sequence[int], bucket_cap_mb: float | None) -> list[list[int]]:
    """DDP's buckets as lists of positions into ``sizes_bytes``.

    Args:
        sizes_bytes: gradient bytes (numel x element size) of each parameter, in
            gradient-ready order.
        bucket_cap_mb: DDP's argument, MiB; None for its default.

    Returns:
        ``[[i, j, ...], ...]``: the buckets in the order they are all-reduced.
    """
    first, cap = caps_bytes(bucket_cap_mb)
    buckets: list[list[int]] = []
    open_: list[int] = []
    size = 0
    for i, nbytes in enumerate(sizes_bytes):
        open_.append(i)
        size += nbytes
        if size >= (first if not buckets else cap):  # add first, then close: may overshoot by one tensor
            buckets.append(open_)
            open_, size = [], 0
    if open_:
        buckets.append(open_)
    return buckets


def bucket_bytes(sizes_bytes: Sequence[int], buckets: Sequence[Sequence[int]]) -> list[int]:
    """Bytes of each bucket of a plan."""
    return [sum(sizes_bytes[i] for i in b) for b in buckets]


def hidden_share(t_ddp: float, t_no_sync: float, t_allreduce: float) -> float:
    """The share of the all-reduce time hidden behind backward, in [0, 1].

    ``(t_no_sync + t_allreduce - t_ddp) / t_allreduce``: a DDP step (``t_ddp``) that took no
    longer than the step without communication (``t_no_sync``, under ``ddp.no_sync()``) hid
    all of its bucket all-reduces (``t_allreduce``, timed alone); one that took their sum hid
    none. Times in any one unit; clipped to [0, 1] against timing noise.
    """
    return max(0.0, min(1.0, (t_no_sync + t_allreduce - t_ddp) / t_allreduce))


def ddp_buckets(sizes_in_registration_order: Sequence[int], cap_mb: float | None) -> list[int]:
    """Bytes of each bucket DDP builds for a feed-forward net (gradients ready last layer first):
    :func:`plan_buckets` over the sizes (bytes) in reverse registration order."""
    ready = list(sizes_in_registration_order)[::-1]
    return bucket_bytes(ready, plan_buckets(ready, cap_mb))


def cap_label(bucket_cap_mb: float | None) -> str:
    """How a bucket cap is named in labels and messages: ``cap=0.5MiB``, ``cap=default(25MiB)``."""
    return f"cap=default({DEFAULT_CAP_MB}MiB)" if bucket_cap_mb is None else f"cap={bucket_cap_mb:g}MiB"
