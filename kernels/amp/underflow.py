"""Why loss scaling exists: float16 gradients of a small loss underflow to 0 without it.

float16's smallest subnormal is 2^-24 (~6e-8); gradients below it flush to zero
(Micikevicius et al. 2018, "Mixed Precision Training": much of the activation gradients
of real networks lies below it). :func:`fp16_zero_grad_fractions` shows it on
one float16 Linear layer whose loss is ~1e-7, as late in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def fp16_zero_grad_fractions(
    device: torch.device | str, seed: int, scales: Sequence[float] = (1.0, 2.0**16)
) -> dict[float, float]:
    """{scale: share of the Linear(32, 8) weight gradients that are exactly 0}, float16 math throughout.

    The loss (a mean of small squares, ~1e-7) is multiplied by ``scale`` before backward.
    """
    torch.manual_seed(seed)
    lin = nn.Linear(32, 8).to(device, torch.float16)
    g = torch.Generator().manual_seed(seed + 3)
    x = torch.randn(64, 32, generator=g).to(device, torch.float16)  # (64, 32)
    zeros = {}
    for scale in scales:
        lin.zero_grad(set_to_none=True)
        loss = (lin(x) * 1e-4).pow(2).mean() * 1e-1
        (loss * scale).backward()
        zeros[scale] = (lin.weight.grad == 0).float().mean().item()
    return zeros
