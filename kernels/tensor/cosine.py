"""Cosine similarity by hand: the formula as written, a fused row version, all-pairs by matmul.

All follow ``F.cosine_similarity`` (PyTorch docs, torch 2.x): x1 . x2 / (max(||x1||, eps) *
max(||x2||, eps)), each norm clamped on its own; a zero vector gives 0, never NaN.
Operands that do not broadcast raise ValueError naming x1 and x2.
"""

from __future__ import annotations

import torch

EPS = 1e-8  # F.cosine_similarity's default


def _broadcast_along(x1: torch.Tensor, x2: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Both operands broadcast (views) when either would be broadcast along ``dim``: the norm
    of a repeated vector is not the norm of the original. Otherwise unchanged, so pairwise
    broadcasting over other dims still takes each norm once."""
    try:
        shape = torch.broadcast_shapes(x1.shape, x2.shape)
    except RuntimeError:
        raise ValueError(
            f"cosine similarity: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} do not broadcast to one shape"
        ) from None
    if not shape:
        return x1, x2
    d = dim % len(shape) - len(shape)  # negative: counts from the right in every operand
    if any((x.shape[d] if x.dim() >= -d else 1) != shape[d] for x in (x1, x2)):
        return torch.broadcast_tensors(x1, x2)
    return x1, x2


def cosine_naive(x1: torch.Tensor, x2: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """Similarity along ``dim`` of broadcastable x1, x2; builds the full-size product x1 * x2.

    The operands are broadcast (views, no copy) before the norms: broadcast along ``dim``
    repeats a vector's entries, which changes its norm (x1 (1, 2, 3), x2 (2, 1, 3), dim=-2).
    """
    x1, x2 = _broadcast_along(x1, x2, dim)
    return (x1 * x2).sum(dim) / (x1.norm(dim=dim).clamp_min(eps) * x2.norm(dim=dim).clamp_min(eps))


def cosine_fused(x1: torch.Tensor, x2: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """Similarity along ``dim`` with ``linalg.vecdot`` and ``vector_norm``: no full-size temporary.

    Broadcast first (views), as :func:`cosine_naive`. The clamps and the division are
    out-of-place: they touch only reduced-size tensors, and autograd saved the norms.
    """
    x1, x2 = _broadcast_along(x1, x2, dim)
    dot = torch.linalg.vecdot(x1, x2, dim=dim)
    n1 = torch.linalg.vector_norm(x1, dim=dim).clamp_min(eps)
    n2 = torch.linalg.vector_norm(x2, dim=dim).clamp_min(eps)
    return dot / (n1 * n2)


def cosine_pairwise_matmul(x1: torch.Tensor, x2: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """All-pairs similarity (..., N, D) x (..., M, D) -> (..., N, M): rows normalised once, one matmul."""
    x1n = x1 / torch.linalg.vector_norm(x1, dim=-1, keepdim=True).clamp_min(eps)  # (..., N, D)
    x2n = x2 / torch.linalg.vector_norm(x2, dim=-1, keepdim=True).clamp_min(eps)  # (..., M, D)
    return x1n @ x2n.mT  # (..., N, D) @ (..., D, M)


def broadcast_pairs(
    x1: torch.Tensor, x2: torch.Tensor, dim: int, pairwise: bool
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(x1, x2, dim) as given (row-wise mode), or, ``pairwise``, every row of x1 (..., N, D) against
    every row of x2 (..., M, D) by broadcasting: (x1 (..., N, 1, D), x2 (..., 1, M, D), -1), whose
    products materialise (..., N, M, D)."""
    return (x1.unsqueeze(-2), x2.unsqueeze(-3), -1) if pairwise else (x1, x2, dim)


def edge_vectors(shape: tuple[int, ...], dim: int, g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Random N(0, 1) vectors along ``dim`` of a tensor of ``shape``, the first one zero and the
    second (if any) of norm ~1e-9, below ``EPS``: the inputs where the eps rule shows.

    The vectors are drawn last-dim-first, then moved to ``dim``: the result is a view, not
    contiguous unless ``dim`` is the last dim (as real strided inputs are).
    """
    d = shape[dim]
    rest = [n for i, n in enumerate(shape) if i != dim % len(shape)]
    base = torch.randn(*rest, d, generator=g, dtype=dtype)  # (..., D): vectors last
    rows = base.view(-1, d)  # (R, D), a view: edits land in base
    rows[0] = 0.0
    if rows.shape[0] > 1:
        rows[1] *= 1e-9
    return base.movedim(-1, dim)  # vectors back along dim
