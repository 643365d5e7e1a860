"""BYOL's pieces: online/target networks, the EMA target update with its cosine schedule, the loss.

Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
NeurIPS 2020 (arXiv:2006.07733), section 3.1 and appendix A:

* an online network (encoder f, projector g) plus a predictor q, and a target network (f, g) whose
  weights are an exponential moving average of the online ones, never trained by gradients:
  xi <- tau xi + (1 - tau) theta after every step;
* tau rises from tau_base = 0.996 to 1 on a cosine: tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2
  at step k of K;
* the loss regresses the online prediction onto the target projection of the other view:
  ||q_bar - z'_bar||^2 = 2 - 2 cos(q, z') with bar the l2-normalised vector, symmetrised over the
  two views; the target side is under stop-gradient.

Shapes: projections and predictions (N, D) float; losses are scalars (batch means).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


def cosine_tau(step: int, total: int, tau_base: float = 0.996) -> float:
    """BYOL's EMA decay at ``step`` of ``total``: tau_base at 0, rising on a cosine to 1 at ``total``.

    Raises ValueError when step is outside 0..total or tau_base outside [0, 1].
    """
    if not 0 <= step <= total or total < 1:
        raise ValueError(f"cosine_tau: need 0 <= step <= total and total >= 1, got step={step}, total={total}")
    if not 0.0 <= tau_base <= 1.0:
        raise ValueError(f"cosine_tau: tau_base must be in [0, 1], got {tau_base}")
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * step / total) + 1.0) / 2.0


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """In place, for every parameter: target <- tau * target + (1 - tau) * online.

    Buffers (BatchNorm running statistics) are left to the target's own forward passes.
    Raises ValueError when the two modules' parameter shapes differ.
    """
    pt, po = list(target.parameters()), list(online.parameters())
    if [p.shape for p in pt] != [p.shape for p in po]:
        raise ValueError("ema_update_: target and online networks must have the same parameter shapes")
    torch._foreach_mul_(pt, tau)
    torch._foreach_add_(pt, po, alpha=1.0 - tau)


def regression_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(p, z), batch mean; ``z`` (the target) is under stop-gradient."""
    return (2.0 - 2.0 * F.cosine_similarity(p, z.detach(), dim=-1)).mean()


class BYOLNets(nn.Module):
    """Online network (encoder + projector), predictor, and a target copy that gradients never reach.

    ``online(x)`` gives projections (N, D), ``predictor`` maps (N, D) -> (N, D); ``target`` starts as
    a deep copy of ``online`` with ``requires_grad`` off.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, predictor: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.online = nn.Sequential(encoder, projector)
        self.predictor = predictor
        self.target = copy.deepcopy(self.online).requires_grad_(False)

    def trainable(self) -> list[nn.Parameter]:
        """Online and predictor parameters: what the optimiser updates."""
        return [*self.online.parameters(), *self.predictor.parameters()]


def target_projection(nets: BYOLNets, x: torch.Tensor) -> torch.Tensor:
    """The target network's projection of ``x`` (N, 64) -> (N, D), computed without a graph."""
    with torch.no_grad():
        return nets.target(x)


def byol_loss(nets: BYOLNets, v1: torch.Tensor, v2: torch.Tensor, target_fn=target_projection,
              loss_fn=regression_loss) -> torch.Tensor:  # fmt: skip
    """The symmetrised loss: loss_fn(q(online(v1)), target(v2)) + loss_fn(q(online(v2)), target(v1))."""
    p1, p2 = nets.predictor(nets.online(v1)), nets.predictor(nets.online(v2))
    return loss_fn(p1, target_fn(nets, v2)) + loss_fn(p2, target_fn(nets, v1))


@torch.no_grad()
def spread(z: torch.Tensor) -> float:
    """Collapse detector of Chen & He (SimSiam, CVPR 2021, section 4.1): the per-dimension std over
    the batch of the l2-normalised outputs, averaged over dimensions and multiplied by sqrt(D).

    z (N, D) float. About 1 for outputs spread over the sphere, 0 when every input maps to one point.
    """
    return float(F.normalize(z, dim=1).std(dim=0).mean() * math.sqrt(z.shape[1]))


def mlp_head(d_in: int, d_out: int, hidden: int = 64) -> nn.Module:
    """BYOL's projector / predictor shape at digits scale: Linear(d_in, hidden) -> BatchNorm -> ReLU ->
    Linear(hidden, d_out) (Grill et al. appendix A: 4096 hidden, 256 out); (N, d_in) -> (N, d_out)."""
    from models.mlp import MLP, MLPConfig

    return MLP(MLPConfig(in_features=d_in, hidden=(hidden,), out_features=d_out, batch_norm=True))


def predictor(dim: int) -> nn.Module:
    """The predictor q: an :func:`mlp_head` from projections (N, dim) to predictions (N, dim)."""
    return mlp_head(dim, dim)


def online_spread(nets: BYOLNets, x: torch.Tensor) -> float:
    """:func:`spread` of the online projections of ``x`` (N, 64) in eval mode (BatchNorm on its
    running statistics, as for held-out data); ``nets`` is back in train mode afterwards."""
    nets.eval()
    out = spread(nets.online(x))
    nets.train()
    return out


def loss_with_constant_targets(nets: BYOLNets, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """Reference for the stop-gradient: the symmetrised :func:`regression_loss` with the target
    projections computed with a graph and then detached, so they enter as constants; the online
    gradient of :func:`byol_loss` must equal this one's. Views (N, 64) -> scalar."""
    t1, t2 = nets.target(v1).detach(), nets.target(v2).detach()  # (N, D) constants
    q1, q2 = nets.predictor(nets.online(v1)), nets.predictor(nets.online(v2))
    return regression_loss(q1, t2) + regression_loss(q2, t1)


def train_byol(
    nets: BYOLNets,
    loss_fn,
    ema,
    x: torch.Tensor,
    x_test: torch.Tensor,
    *,
    steps: int,
    batch: int,
    lr: float,
    tau_base: float,
    seed: int,
    every: int = 10,
) -> tuple[list[int], list[float], tuple[list[int], list[float]]]:
    """BYOL's loop: :func:`kernels.ssl.train.train_two_views` on ``loss_fn(v1, v2)`` over digits ``x``
    (N, 64), after each step ``ema(nets.target, nets.online, tau)`` with tau on :func:`cosine_tau`.

    Returns (steps at which the spread was taken: 0, every ``every``-th and the last;
    :func:`online_spread` of ``x_test`` (M, 64) at those steps; (steps, batch losses) of the run).
    """
    from kernels.ssl.train import train_two_views

    at, spreads = [0], [online_spread(nets, x_test)]

    def after(step: int) -> None:
        ema(nets.target, nets.online, cosine_tau(step + 1, steps, tau_base))
        if (step + 1) % every == 0 or step + 1 == steps:
            at.append(step + 1)
            spreads.append(online_spread(nets, x_test))

    curve = train_two_views(loss_fn, nets.trainable(), x, steps=steps, batch=batch, lr=lr, seed=seed, after_step=after)
    return at, spreads, curve
