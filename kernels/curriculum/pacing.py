"""Curriculum learning as Wu, Dyer & Neyshabur define it ("When Do Curricula Work?", ICLR 2021):
a *scoring function* orders the examples from easy to hard and a *pacing function* g(t) gives
the share of that order a step may draw from; batches are drawn uniformly from the exposed
prefix. Random order is g = 1 over a random order; anti-curriculum is the reversed order.

Shapes: ``order`` (N,) int64 (example indices, easiest first), batches (steps, B) int64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.mlp import MLP, MLPConfig


def linear_pacing(step: int, total_steps: int, start: float, full_at: float) -> float:
    """g(t) = min(1, start + (1 - start) t / (full_at T)): the share exposed at 0-based ``step``.

    ``start`` in (0, 1] is the share at step 0, ``full_at`` in (0, 1] the share of training
    after which everything is exposed (Wu et al. 2021's linear pacing with a = full_at, b = start).

    Raises:
        ValueError: a share outside (0, 1].
    """
    if not (0 < start <= 1 and 0 < full_at <= 1):
        raise ValueError(f"start and full_at must be in (0, 1], got {start} and {full_at}")
    return min(1.0, start + (1 - start) * step / (full_at * total_steps))


def exposed(fraction: float, n: int) -> int:
    """Examples exposed at share ``fraction`` of n: ceil(fraction n), at least 1."""
    return max(1, math.ceil(fraction * n - 1e-9))  # -1e-9: 0.3 * 10 is 3.0000000000000004


def paced_batches(
    order: torch.Tensor, steps: int, batch: int, pacing, generator: torch.Generator, exposed_fn=exposed
) -> torch.Tensor:
    """(steps, batch) indices: step t draws uniformly from ``order[:exposed_fn(pacing(t), N)]``."""
    n = order.numel()
    rows = []
    for t in range(steps):
        k = exposed_fn(pacing(t), n)
        rows.append(order[torch.randint(0, k, (batch,), generator=generator)])
    return torch.stack(rows)


def probe_difficulty(x: torch.Tensor, y: torch.Tensor, *, steps: int = 200, seed: int = 0) -> torch.Tensor:
    """Per-example loss (N,) of a linear probe trained on (x (N, D), y (N,)): higher is harder."""
    torch.manual_seed(seed)
    probe = nn.Linear(x.shape[1], int(y.max()) + 1)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return F.cross_entropy(probe(x), y, reduction="none")


def noisy_labels(y: torch.Tensor, share: float, generator: torch.Generator, classes: int = 10) -> torch.Tensor:
    """A copy of labels ``y`` (N,) int64 with each replaced, with probability ``share``, by one drawn
    uniformly from ``classes`` (so about share/classes of the replaced ones keep their label)."""
    y = y.clone()
    flip = torch.rand(len(y), generator=generator) < share
    y[flip] = torch.randint(0, classes, (int(flip.sum()),), generator=generator)
    return y


def train_paced(
    order: torch.Tensor,
    pacing,
    data: tuple,
    steps: int,
    *,
    seed: int,
    exposed_fn=exposed,
    batch: int = 32,
    classes: int = 10,
) -> float:
    """Held-out accuracy in [0, 1] of a D-64-``classes`` MLP after ``steps`` Adam steps (lr 3e-3) on paced batches.

    ``data`` = (x_train (N, D) float, y_train (N,) int64, x_test, y_test); batches come from
    :func:`paced_batches` over ``order`` with ``pacing`` (step -> share); ``seed`` seeds both the
    weights and the batch draws, so two arms with one seed differ only in order and pacing.
    """
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    model = MLP(MLPConfig(in_features=xtr.shape[1], hidden=(64,), out_features=classes))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for idx in paced_batches(order, steps, batch, pacing, torch.Generator().manual_seed(seed), exposed_fn):
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])  # idx (batch,)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((model(xte).argmax(-1) == yte).float().mean())
