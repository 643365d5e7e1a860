"""Training a CIFAR classifier with on-the-fly augmentation and a per-iteration LR schedule.

The loop of He et al. 2015 Sec. 4.2 (arXiv:1512.03385) for any recipe: every step draws a
minibatch, augments it with a seeded ``augment`` (such as
``kernels.vision.augment.augment_batch``), takes one SGD step and steps the scheduler once
per *iteration* (the paper's milestones count iterations, not epochs), through
:func:`harness.train.fit`, which also evaluates on the held-out images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.train import TrainLog, fit, standard_step


def fit_augmented(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    augment: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    *,
    steps: int,
    batch_size: int,
    padding: int,
    flip_p: float,
    seed: int,
) -> TrainLog:
    """Train ``model`` for ``steps`` minibatches of ``batch_size`` from ``train`` (images (N, C, H, W),
    int64 labels (N,)), each passed through ``augment(x, y, generator, padding=, flip_p=)`` whose
    draws come from a CPU generator seeded with ``seed``; cross-entropy, ``sched`` stepped per
    iteration, ``test`` evaluated 8 times over the run. Returns :func:`harness.train.fit`'s log."""
    g = torch.Generator().manual_seed(seed)

    def step(m, o, xb, yb, loss_fn):
        return standard_step(m, o, augment(xb, yb, g, padding=padding, flip_p=flip_p)[0], yb)

    epochs = -(-steps * batch_size // train[0].shape[0])  # ceil: enough passes for ``steps``
    return fit(
        model,
        opt,
        train,
        batch_size=batch_size,
        epochs=epochs,
        max_steps=steps,
        eval_data=test,
        eval_every=max(1, steps // 8),
        scheduler=sched,
        step_fn=step,
        seed=seed,
    )
