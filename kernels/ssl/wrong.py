"""Wrong NT-Xent losses: the mutants of advanced.simclr (each one a plausible mistake).

Each has :func:`kernels.ssl.contrastive.nt_xent`'s signature ``(z1 (N, D), z2 (N, D),
temperature) -> scalar``; the task's check must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.ssl.contrastive import nt_xent


def _similarities(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D)
    return z @ z.T / temperature  # (2N, 2N)


def unmasked(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """WRONG: s_ii stays in the softmax denominator (the diagonal is not masked)."""
    n = z1.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(_similarities(z1, z2, temperature), target)


def no_temperature(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """WRONG: the temperature ignored (tau = 1)."""
    return nt_xent(z1, z2, 1.0)


def one_direction(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """WRONG: only the first view's rows are anchors (half the loss's terms)."""
    n = z1.shape[0]
    sim = _similarities(z1, z2, temperature).fill_diagonal_(float("-inf"))[:n]  # (N, 2N)
    return F.cross_entropy(sim, torch.arange(n, 2 * n))


def positives_shifted(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """WRONG: row i paired with image i - 1's second view."""
    return nt_xent(z1, z2.roll(1, 0), temperature)


def no_positive_term(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """WRONG: only the denominator (log-sum-exp over the other views): blind to which view is whose partner."""
    sim = _similarities(z1, z2, temperature).fill_diagonal_(float("-inf"))  # (2N, 2N)
    return torch.logsumexp(sim, dim=1).mean()
