"""Matrix multiplication by hand (no torch.mm / matmul / @), three ways, under torch.matmul's rank rules.

Rank rules (PyTorch docs, ``torch.matmul``): a 1-D first operand gets a 1 prepended to its
shape and a 1-D second operand a 1 appended, removed again from the result; the batch dims
(all but the last two) broadcast; both 1-D gives a 0-d dot product; a 0-d operand is an
error. Empty dims are allowed (K = 0 gives zeros). :func:`with_matmul_ranks` applies these
rules around a core that takes two operands of the same batch shape (..., M, K), (..., K, N).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["with_matmul_ranks", "matmul_loop", "matmul_broadcast_sum", "matmul_blocked"]


def with_matmul_ranks(
    core: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """``core`` applied under torch.matmul's rank rules (module docstring).

    Raises RuntimeError (as torch) for a 0-d operand or mismatched inner dims.
    """
    if a.dim() == 0 or b.dim() == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {a.dim()}D and {b.dim()}D")
    a2 = a.unsqueeze(0) if a.dim() == 1 else a  # (..., M, K), M = 1 for a vector
    b2 = b.unsqueeze(-1) if b.dim() == 1 else b  # (..., K, N), N = 1 for a vector
    if a2.shape[-1] != b2.shape[-2]:
        raise RuntimeError(
            f"matmul: inner dims differ: {tuple(a.shape)} @ {tuple(b.shape)} ({a2.shape[-1]} != {b2.shape[-2]})"
        )
    batch = torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    out = core(a2.expand(*batch, *a2.shape[-2:]), b2.expand(*batch, *b2.shape[-2:]))  # (*batch, M, N)
    if a.dim() == 1:
        out = out.squeeze(-2)
    if b.dim() == 1:
        out = out.squeeze(-1)
    return out


def _loop(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(*a.shape[:-1], b.shape[-1], dtype=a.dtype, device=a.device)
    nb = math.prod(a.shape[:-2])  # explicit: reshape(-1, ...) is ambiguous for 0 elements
    flat_a = a.reshape(nb, *a.shape[-2:])  # (B, M, K)
    flat_b = b.reshape(nb, *b.shape[-2:])  # (B, K, N)
    flat_o = out.view(nb, *out.shape[-2:])  # (B, M, N), a view of out
    for p in range(flat_a.shape[0]):
        for i in range(flat_a.shape[1]):
            for j in range(flat_b.shape[2]):
                flat_o[p, i, j] = (flat_a[p, i, :] * flat_b[p, :, j]).sum()
    return out


def _broadcast_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # (..., M, K, 1) * (..., 1, K, N) -> (..., M, K, N), summed over K
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)


def _blocked(a: torch.Tensor, b: torch.Tensor, block: int = 32) -> torch.Tensor:
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    out = torch.zeros(*a.shape[:-1], n, dtype=a.dtype, device=a.device)
    for i0 in range(0, m, block):
        for j0 in range(0, n, block):
            acc = out[..., i0 : i0 + block, j0 : j0 + block]  # view: accumulate in place
            for k0 in range(0, k, block):
                # (..., bm, bk, 1) * (..., 1, bk, bn) summed over bk -> (..., bm, bn)
                acc += (
                    a[..., i0 : i0 + block, k0 : k0 + block].unsqueeze(-1)
                    * b[..., k0 : k0 + block, j0 : j0 + block].unsqueeze(-3)
                ).sum(-2)
    return out


def matmul_loop(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The textbook triple loop (one dot product per output element in Python)."""
    return with_matmul_ranks(_loop, a, b)


def matmul_broadcast_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """One broadcast product (..., M, K, N) summed over K."""
    return with_matmul_ranks(_broadcast_sum, a, b)


def matmul_blocked(a: torch.Tensor, b: torch.Tensor, block: int = 32) -> torch.Tensor:
    """Tiles of block x block, each a broadcast-sum over a K tile, accumulated into the output."""
    return with_matmul_ranks(lambda x, y: _blocked(x, y, block), a, b)
