"""Wrong vectorizations: the mutants of m4.vectorize_loops, each a plausible mistake in a
kernel of :mod:`kernels.tensor.vectorize` (same arguments and shapes as the right one).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kernels.tensor import vectorize as V


def hist_off_by_one(x: torch.Tensor, bins: int, lo: float, hi: float) -> torch.Tensor:
    """WRONG: ceil instead of floor: values on a bin edge go one bin up."""
    v = x.reshape(-1).double()
    v = v[(v >= lo) & (v <= hi)]
    return torch.bincount(((v - lo) * bins / (hi - lo)).ceil().long().clamp(0, bins - 1), minlength=bins)


def hist_open_top(x: torch.Tensor, bins: int, lo: float, hi: float) -> torch.Tensor:
    """WRONG: the top edge hi itself is dropped."""
    v = x.reshape(-1).double()
    v = v[(v >= lo) & (v < hi)]
    return torch.bincount(((v - lo) * bins / (hi - lo)).floor().long(), minlength=bins)


def ema_zero_start(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """WRONG: the scan starts from 0 instead of x[0]."""
    decay = (1 - alpha) ** torch.arange(1, x.shape[0] + 1).view(-1, *[1] * (x.dim() - 1))
    return V.ema_vec(x, alpha) - decay * x[0]


def gram_plus_one(variant: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """WRONG in both versions (``variant``: ``loop`` or ``vectorized``): a loop and a
    vectorization sharing a bug, which only a third opinion (torch's own op) catches."""
    return lambda x: (V.gram_vec(x) if variant == "vectorized" else V.gram_loop(x)) + 1.0


def running_mean_short(x: torch.Tensor, window: int) -> torch.Tensor:
    """WRONG: one window too few (the last full window dropped)."""
    return V.running_mean_vec(x, window)[:-1]


def distances_transposed(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """WRONG: distances of y to x, transposed back and cut to x's row count (N, M - 1)."""
    return torch.cdist(y, x).T.contiguous()[:, :-1]
