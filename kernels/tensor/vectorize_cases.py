"""Inputs and torch's own answers for the kernels of :mod:`kernels.tensor.vectorize`, as
m4.vectorize_loops checks and times them.

``config`` is any object with ``kernel`` (a name in ``KERNELS``), ``n``, ``d`` and ``param``
(the task's ``VecConfig``: rows N, length T or element count; features D or series; window,
bins or alpha).
"""

from __future__ import annotations

import torch

from kernels.tensor.vectorize import KERNELS

#: histogram range: randn data, so a few percent fall outside and are ignored
HIST_LO, HIST_HI = -2.5, 2.5


def make_inputs(config, device, dtype: torch.dtype, seed: int) -> tuple:
    """Positional arguments of the kernel (tensors created on CPU from ``seed``, then moved).

    Raises:
        ValueError: ``config.kernel`` is not in ``KERNELS``.
    """
    g = torch.Generator().manual_seed(seed)
    k, n, d = config.kernel, config.n, config.d
    if k == "pairwise_distances":
        # M = N + 3 rows on the right so a transposed result cannot pass
        return (
            torch.randn(n, d, generator=g, dtype=dtype).to(device),
            torch.randn(n + 3, d, generator=g, dtype=dtype).to(device),
        )
    if k == "running_mean":
        return torch.randn(n, d, generator=g, dtype=dtype).to(device), int(config.param)
    if k == "histogram":
        bins = int(config.param)
        x = torch.randn(n, generator=g, dtype=dtype)
        # every bin edge (lo and hi included), and a NaN: the cases an off-by-one gets wrong
        edges = torch.linspace(HIST_LO, HIST_HI, bins + 1, dtype=torch.float64).to(dtype)
        x = torch.cat([x, edges, torch.tensor([float("nan"), HIST_HI + 1.0], dtype=dtype)])
        return x[torch.randperm(x.numel(), generator=g)].to(device), bins, HIST_LO, HIST_HI
    if k == "gram":
        return (torch.randn(n, d, generator=g, dtype=dtype).to(device),)
    if k == "ema":
        return torch.randn(n, d, generator=g, dtype=dtype).to(device), float(config.param)
    raise ValueError(f"unknown kernel {k!r}; one of {sorted(KERNELS)}")


def torch_reference(config, *args) -> torch.Tensor | None:
    """The same function through torch's own op, where torch has one (None for the EMA)."""
    k = config.kernel
    if k == "pairwise_distances":
        x, y = args
        # compute_mode: cdist's default switches to the ||x||^2+||y||^2-2xy matmul form past 25
        # rows, which cancels for close points; the direct form is what both versions compute
        return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
    if k == "running_mean":
        x, w = args
        return x.unfold(0, w, 1).mean(-1)  # (T - w + 1, d, w) -> (T - w + 1, d)
    if k == "histogram":
        x, bins, lo, hi = args
        return torch.histc(x.double(), bins, lo, hi).long()
    if k == "gram":
        (x,) = args
        return torch.matmul(x, x.transpose(0, 1))
    return None  # EMA: torch has no op for it; the loop is the reference
