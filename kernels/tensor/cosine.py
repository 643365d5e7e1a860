"""Cosine similarity by hand: the formula as written, a fused row version, all-pairs by matmul.

All follow ``F.cosine_similarity`` (PyTorch docs, torch 2.x): x1 . x2 / (max(||x1||, eps) *
max(||x2||, eps)), each norm clamped on its own; a zero vector gives 0, never NaN.
"""

from __future__ import annotations

import torch

EPS = 1e-8  # F.cosine_similarity's default


def cosine_naive(x1: torch.Tensor, x2: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """Similarity along ``dim`` of broadcastable x1, x2; builds the full-size product x1 * x2."""
    return (x1 * x2).sum(dim) / (x1.norm(dim=dim).clamp_min(eps) * x2.norm(dim=dim).clamp_min(eps))


def cosine_fused(x1: torch.Tensor, x2: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """Similarity along ``dim`` with ``linalg.vecdot`` and ``vector_norm``: no full-size temporary."""
    dot = torch.linalg.vecdot(x1, x2, dim=dim)
    n1 = torch.linalg.vector_norm(x1, dim=dim).clamp_min_(eps)
    n2 = torch.linalg.vector_norm(x2, dim=dim).clamp_min_(eps)
    return dot.div_(n1.mul_(n2))


def cosine_pairwise_matmul(x1: torch.Tensor, x2: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """All-pairs similarity (..., N, D) x (..., M, D) -> (..., N, M): rows normalised once, one matmul."""
    x1n = x1 / torch.linalg.vector_norm(x1, dim=-1, keepdim=True).clamp_min(eps)  # (..., N, D)
    x2n = x2 / torch.linalg.vector_norm(x2, dim=-1, keepdim=True).clamp_min(eps)  # (..., M, D)
    return x1n @ x2n.mT  # (..., N, D) @ (..., D, M)
