"""The self-supervised training loop SimCLR and BYOL share: two views of each digit, one loss, Adam.

Each step draws a batch of digits, makes two independent views (:func:`kernels.ssl.views.digit_view`),
evaluates ``loss_fn(v1, v2)``, steps Adam on ``params``, then calls ``after_step(step)`` (BYOL's EMA
update goes there). All randomness (batches, views) comes from one CPU generator seeded with ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from kernels.ssl.views import digit_view


def two_view_step(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    opt: torch.optim.Optimizer,
    xb: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """One step on the digits ``xb`` (B, 64): two views drawn from ``generator`` (first, then second),
    ``loss_fn(v1, v2)``, backward, ``opt.step()``; returns the loss (with its graph)."""
    loss = loss_fn(digit_view(xb, generator), digit_view(xb, generator))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def train_two_views(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    params: Iterable[torch.nn.Parameter],
    x: torch.Tensor,
    *,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    after_step: Callable[[int], None] | None = None,
    every: int = 10,
) -> tuple[list[int], list[float]]:
    """Train for ``steps`` on digits ``x`` (N, 64); returns (steps, batch losses) every ``every`` steps.

    Raises ValueError when ``batch`` exceeds the number of digits or ``steps`` < 1.
    """
    if steps < 1 or not 1 < batch <= x.shape[0]:
        raise ValueError(f"train_two_views: need steps >= 1 and 2 <= batch <= {x.shape[0]}, got {steps}, {batch}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr)
    at, losses = [], []
    for step in range(steps):
        xb = x[torch.randint(0, x.shape[0], (batch,), generator=g).to(x.device)]  # (B, 64)
        loss = two_view_step(loss_fn, opt, xb, g)
        if after_step is not None:
            after_step(step)
        if step % every == 0 or step == steps - 1:
            at.append(step)
            losses.append(float(loss.detach()))
    return at, losses
