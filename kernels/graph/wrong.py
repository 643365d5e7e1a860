"""Plausible wrong versions of the GCN's A_hat, beside :func:`models.gcn.normalized_adjacency`.

research.gnn declares them as mutants: its check must reject every one. Each takes a dense
symmetric 0/1 adjacency (N, N) and returns a dense (N, N) matrix.
"""

from __future__ import annotations

import torch


def no_self_loops(adj: torch.Tensor) -> torch.Tensor:
    """D^-1/2 A D^-1/2: the renormalisation without the self-loops, so a node drops its own features."""
    d = adj.sum(1).clamp(min=1).rsqrt()
    return d[:, None] * adj * d[None, :]


def row_normalised(adj: torch.Tensor) -> torch.Tensor:
    """D^-1 (A + I): mean aggregation, not the symmetric normalisation."""
    a = adj + torch.eye(adj.shape[0])
    return a / a.sum(1, keepdim=True)


def no_edges(x: torch.Tensor, k: int) -> torch.Tensor:
    """A kNN graph builder (``models.gcn.knn_adjacency``'s signature) that returns no edges: (N, N) zeros."""
    return torch.zeros(len(x), len(x))
