"""Target-network sync for value-based agents.

Mnih et al. 2015 copy the online Q-network into a frozen target every C steps ("hard"
update), so the regression target r + gamma max_a Q_target(s', a) does not move with every
gradient step; Lillicrap et al. 2016 (DDPG) instead track it slowly, theta' <- tau theta +
(1 - tau) theta' ("Polyak" averaging) after every step. tau = 1 is the hard copy.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """theta_target <- tau theta_online + (1 - tau) theta_target, parameters and buffers in place.

    Raises:
        ValueError: tau outside [0, 1], or the two modules' parameter shapes differ.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    t_params = list(target.parameters()) + list(target.buffers())
    o_params = list(online.parameters()) + list(online.buffers())
    if [p.shape for p in t_params] != [p.shape for p in o_params]:
        raise ValueError("target and online networks have different parameter shapes")
    for t, o in zip(t_params, o_params, strict=True):
        if tau == 1.0 or not t.is_floating_point():
            t.copy_(o)
        else:
            t.lerp_(o, tau)  # t + tau (o - t)


class TargetSync:
    """When to sync: every ``every`` steps (step % every == 0), with weight ``tau``.

    ``TargetSync(500)`` is the hard copy every 500 steps (Mnih et al. use C = 10,000 frames on
    Atari); ``TargetSync(1, tau=0.005)`` is Polyak averaging after every step.
    """

    def __init__(self, every: int, tau: float = 1.0):
        if every < 1:
            raise ValueError(f"sync interval must be >= 1 step, got {every}")
        self.every, self.tau = every, tau

    def __call__(self, step: int, target: nn.Module, online: nn.Module) -> bool:
        """Sync if ``step`` is due; True when it synced."""
        if step % self.every:
            return False
        polyak_update(target, online, self.tau)
        return True
