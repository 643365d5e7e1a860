"""reshape / view / flatten by hand: a view where the strides allow one, a copy where not.

``rule(shape, stride, new_shape) -> strides | None`` decides whether a view exists
(:func:`kernels.tensor.views.view_strides`, ATen's ``computeStride``); it is a parameter so
that a wrong rule can be tried against the same code.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import torch

from kernels.tensor.views import infer_shape, view_strides

Rule = Callable[[Sequence[int], Sequence[int], Sequence[int]], "tuple[int, ...] | None"]


def own_view(x: torch.Tensor, shape, rule: Rule = view_strides) -> torch.Tensor:
    """``x.view(shape)``: the same storage with new strides (``rule`` decides them).

    Raises:
        ValueError: bad shape (see infer_shape), or no strides exist (a new dimension
            would span two non-contiguous chunks): use own_reshape, which copies.
    """
    shape = infer_shape(shape, x.numel())
    strides = rule(x.shape, x.stride(), shape)
    if strides is None:
        raise ValueError(
            f"view of shape {tuple(x.shape)} with strides {x.stride()} as {shape} is impossible: a new "
            "dimension would span non-contiguous memory; use reshape (it copies) or .contiguous() first"
        )
    return x.as_strided(shape, strides, x.storage_offset())


def own_reshape(x: torch.Tensor, shape, rule: Rule = view_strides) -> torch.Tensor:
    """``x.reshape(shape)``: a view when legal, else a view of a contiguous copy."""
    shape = infer_shape(shape, x.numel())
    if rule(x.shape, x.stride(), shape) is not None:
        return own_view(x, shape, rule)
    return own_view(x.clone(memory_format=torch.contiguous_format), shape, rule)


def own_flatten(x: torch.Tensor, start_dim: int = 0, end_dim: int = -1, rule: Rule = view_strides) -> torch.Tensor:
    """``torch.flatten(x, start_dim, end_dim)``.

    Raises:
        IndexError: a dim out of range. ValueError: start_dim after end_dim.
    """
    if x.ndim == 0:
        return own_reshape(x, (1,), rule)
    for d in (start_dim, end_dim):
        if not -x.ndim <= d < x.ndim:
            raise IndexError(f"flatten: dim {d} out of range for a {x.ndim}-d tensor (valid {-x.ndim}..{x.ndim - 1})")
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    if start == end:
        return x  # nothing to merge; torch returns the input itself
    merged = math.prod(x.shape[start : end + 1])
    return own_reshape(x, (*x.shape[:start], merged, *x.shape[end + 1 :]), rule)  # (..., s_start*...*s_end, ...)


def random_view_case(rng: random.Random, dtype: torch.dtype, device) -> tuple[torch.Tensor, list[int]]:
    """A random layout and view target for testing a view rule against ``Tensor.view``.

    Returns (x, target): x of 0-4 dims of sizes 1-4 holding distinct values (so a wrong
    view shows), maybe permuted and narrowed (non-contiguous); target a random
    factorisation of x.numel() with maybe a size-1 dim inserted.
    """
    shape = [rng.choice([1, 2, 3, 4]) for _ in range(rng.randint(0, 4))]
    # (2 numel,) narrowed to (numel,) -> shape; then maybe permuted and narrowed
    x = torch.arange(math.prod(shape) * 2, dtype=dtype, device=device)[: math.prod(shape)].view(shape)
    if rng.random() < 0.5:
        perm = list(range(len(shape)))
        rng.shuffle(perm)
        x = x.permute(perm)
    if shape and rng.random() < 0.3:
        d = rng.randrange(len(shape))
        x = x.narrow(d, 0, max(1, x.shape[d] - 1))
    target, left = [], x.numel()
    for _ in range(rng.randint(0, 3)):
        k = rng.choice([k for k in range(1, left + 1) if left % k == 0])
        target.append(k)
        left //= k
    target.append(left)
    if rng.random() < 0.3:
        target.insert(rng.randrange(len(target) + 1), 1)
    return x, target


def layout_input(shape, layout: str, g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """A random tensor of ``shape`` in ``layout``: ``contiguous``, ``permuted`` (dims reversed,
    strides ascending) or ``sliced`` (every other element of the last dim, stride 2)."""
    if layout == "permuted":
        # (s_n-1, ..., s_0) contiguous, permuted to (s_0, ..., s_n-1)
        return torch.randn(shape[::-1], generator=g, dtype=dtype).permute(*range(len(shape) - 1, -1, -1))
    if layout == "sliced":
        return torch.randn(*shape[:-1], 2 * shape[-1], generator=g, dtype=dtype)[..., ::2]
    return torch.randn(shape, generator=g, dtype=dtype)


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when ``a`` and ``b`` use the same storage (one is a view of the other)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
