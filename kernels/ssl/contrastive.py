"""NT-Xent, SimCLR's contrastive loss (Chen, Kornblith, Norouzi & Hinton, ICML 2020, eq. 1).

For a batch of N images and two views each, z1, z2 (N, D) are the projections; stacked as
z = [z1; z2] (2N, D), row i's positive is row i + N (and i + N's is i), and the other 2N - 2 rows
are its negatives. With cosine similarity s_ij = z_i . z_j / (|z_i| |z_j|) and temperature tau:

    l(i, j) = -log( exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau) ),
    L = 1 / (2N) * sum_k [ l(2k-1, 2k) + l(2k, 2k-1) ]   (the paper's indexing)

The denominator leaves out k = i only (the "masked diagonal"): s_ii = 1 is the largest entry and
would otherwise dominate. It is a (2N)-way cross-entropy whose target for row i is its positive.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent of two views z1, z2 (N, D) float (any scale: rows are normalised here); scalar.

    Raises ValueError on mismatched shapes or a non-positive temperature.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent: views must both be (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if temperature <= 0:
        raise ValueError(f"nt_xent: temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D) on the unit sphere
    sim = z @ z.T / temperature  # (2N, 2N)
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)  # i <-> i + N
    return F.cross_entropy(sim, target)


def nt_xent_by_hand(z1: list[list[float]], z2: list[list[float]], temperature: float) -> float:
    """The same loss with Python floats and loops: the paper's formula term by term."""
    z = [*z1, *z2]
    n2 = len(z)
    unit = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in z]
    s = [[sum(a * b for a, b in zip(unit[i], unit[j], strict=True)) for j in range(n2)] for i in range(n2)]
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        denom = sum(math.exp(s[i][k] / temperature) for k in range(n2) if k != i)
        total += -math.log(math.exp(s[i][j] / temperature) / denom)
    return total / n2


def nt_xent_pml(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The same loss through ``pytorch-metric-learning``'s ``NTXentLoss``, which gathers every
    positive and negative pair from labels: rows i and i + N of [z1; z2] share label i."""
    from pytorch_metric_learning.losses import NTXentLoss  # an optional package: imported where used

    labels = torch.arange(z1.shape[0], device=z1.device).repeat(2)  # (2N,)
    return NTXentLoss(temperature=temperature)(torch.cat([z1, z2]), labels)
