"""Wrong self-supervised pieces: the mutants of advanced.simclr and research.byol (each one a
plausible mistake).

The NT-Xent ones have :func:`kernels.ssl.contrastive.nt_xent`'s signature ``(z1 (N, D), z2 (N, D),
temperature) -> scalar``; the BYOL ones (at the end) mirror :mod:`kernels.ssl.byol`'s pieces. The
declaring task's check must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kernels.ssl import byol
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


# -- BYOL (research.byol); the no-predictor and no-stop-gradient ones are also the task's ablation arms --


def no_predictor(dim: int) -> nn.Module:
    """No predictor q: the online projection is regressed onto the target directly."""
    return nn.Identity()


def online_as_target(nets: byol.BYOLNets, x: torch.Tensor) -> torch.Tensor:
    """The "target" branch is the online network itself, its graph kept (no stop-gradient)."""
    return nets.online(x)


def regress_no_detach(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(p, z) with gradients flowing into ``z`` too."""
    return (2.0 - 2.0 * F.cosine_similarity(p, z, dim=-1)).mean()


def ema_swapped(target: nn.Module, online: nn.Module, tau: float) -> None:
    """EMA with the weights swapped: target <- (1 - tau) target + tau online."""
    byol.ema_update_(target, online, 1.0 - tau)


def one_sided(nets, v1, v2, target_fn=byol.target_projection, loss_fn=byol.regression_loss) -> torch.Tensor:
    """Only q(z1) -> z'2, doubled: not symmetrised over the views."""
    return 2 * loss_fn(nets.predictor(nets.online(v1)), target_fn(nets, v2))
