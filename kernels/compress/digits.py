"""The digits classifier the compression tasks quantize and prune.

Data: scikit-learn's 8x8 digits (``harness.data.digits``), x float32 (N, 64) in [0, 1], y int64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(hidden: int, depth: int = 2) -> nn.Sequential:
    """64 -> hidden (x depth, ReLU) -> 10 logits; float32, PyTorch's default init (seed before)."""
    layers: list[nn.Module] = []
    width = 64
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, 10))


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    seed: int,
    batch: int = 64,
    weight_decay: float = 0.0,
):
    """Adam (AdamW when ``weight_decay`` > 0) on seeded minibatches of (x (N, ...), y (N,)) with
    cross-entropy; returns the model in eval mode.

    The optimizer is created here, so pruning hooks and fake quantizers on the model are in force
    on every step.
    """
    g = torch.Generator().manual_seed(seed)
    if weight_decay > 0:
        opt: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of argmax(model(x)) == y, in [0, 1] (model: any callable (N, 64) -> (N, 10))."""
    return float((model(x).argmax(-1) == y).float().mean())


def cnn(c1: int = 16, c2: int = 32) -> nn.Sequential:
    """(N, 1, 8, 8) -> conv3x3(c1) -> ReLU -> conv3x3(c2) -> ReLU -> maxpool 2 -> flatten -> Linear(c2*16, 10).

    Indices 0 and 2 are the convolutions, 6 the classifier; float32, default init (seed before).
    """
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),  # (N, c2, 4, 4) -> (N, c2 * 16), channel-major
        nn.Linear(c2 * 16, 10),
    )
