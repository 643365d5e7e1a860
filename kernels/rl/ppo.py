"""PPO's losses (Schulman et al., "Proximal Policy Optimization Algorithms", 2017) as CleanRL
and OpenAI baselines implement them.

All take flat (B,) float tensors of a minibatch and return a scalar to *minimise*.
"""

from __future__ import annotations

import torch


def clipped_surrogate_terms(
    logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float
) -> torch.Tensor:
    """Per-sample objective min(r A, clip(r, 1 - eps, 1 + eps) A), r = exp(logp_new - logp_old).

    Schulman et al. 2017, eq. 7: for A > 0 the ratio's gain is capped at 1 + eps, for A < 0
    at 1 - eps; on the other side the unclipped (pessimistic) term is kept. (B,) -> (B,).
    """
    ratio = (logp_new - logp_old).exp()
    return torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)


def clipped_surrogate_loss(
    logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float
) -> torch.Tensor:
    """-mean of :func:`clipped_surrogate_terms`: the policy loss."""
    return -clipped_surrogate_terms(logp_new, logp_old, adv, clip).mean()


def value_loss(
    v_new: torch.Tensor, v_old: torch.Tensor, returns: torch.Tensor, clip: float | None = None
) -> torch.Tensor:
    """0.5 mean((V - R)^2), or with ``clip`` the pessimistic clipped form of OpenAI baselines:

    0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)). (B,) -> scalar.
    """
    unclipped = (v_new - returns) ** 2
    if clip is None:
        return 0.5 * unclipped.mean()
    v_clipped = v_old + (v_new - v_old).clamp(-clip, clip)
    return 0.5 * torch.max(unclipped, (v_clipped - returns) ** 2).mean()


def normalize_advantages(adv: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(A - mean A) / (std A + eps), std with Bessel's correction (torch's default, as CleanRL).

    Raises:
        ValueError: fewer than 2 advantages (the std is undefined).
    """
    if adv.numel() < 2:
        raise ValueError(f"advantage normalisation needs >= 2 samples, got {adv.numel()}")
    return (adv - adv.mean()) / (adv.std() + eps)
