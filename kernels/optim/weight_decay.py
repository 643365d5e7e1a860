"""Weight decay by hand (2.09): ``l2_decay_`` (decay into the gradient, i.e. L2 regularisation),
``decoupled_decay_`` (shrink the weights; Loshchilov & Hutter 2019, "Decoupled Weight Decay
Regularization") and ``l2_penalty`` (the same L2 written as a loss).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


@torch.no_grad()
def l2_decay_(params: Iterable[Tensor], weight_decay: float, *, foreach: bool = False) -> None:
    """L2 regularisation through the gradient: grad <- grad + weight_decay * p, in place.

    This is the gradient of (weight_decay / 2) * ||p||^2 added to the loss, and what
    ``torch.optim.SGD(weight_decay=...)`` does before its momentum. Parameters without a
    gradient are skipped. foreach: one ``torch._foreach_add_`` per (device, dtype) group.
    """
    ps = [p for p in params if p.grad is not None]
    if weight_decay == 0 or not ps:
        return
    if foreach:
        from kernels.optim.functional import group_by_device_dtype

        for idx in group_by_device_dtype(ps):
            torch._foreach_add_([ps[i].grad for i in idx], [ps[i] for i in idx], alpha=weight_decay)
    else:
        for p in ps:
            p.grad.add_(p, alpha=weight_decay)


@torch.no_grad()
def decoupled_decay_(params: Iterable[Tensor], lr: float, weight_decay: float, *, foreach: bool = False) -> None:
    """Decoupled weight decay: p <- p * (1 - lr * weight_decay), in place, for p with a gradient.

    Applied before an Adam step without decay this is exactly ``torch.optim.AdamW``: the
    decay never enters Adam's moment estimates, so it is not rescaled by 1 / sqrt(v).
    """
    ps = [p for p in params if p.grad is not None]
    if weight_decay == 0 or not ps:
        return
    factor = 1 - lr * weight_decay
    if foreach:
        from kernels.optim.functional import group_by_device_dtype

        for idx in group_by_device_dtype(ps):
            torch._foreach_mul_([ps[i] for i in idx], factor)
    else:
        for p in ps:
            p.mul_(factor)


def l2_penalty(params: Iterable[Tensor], weight_decay: float) -> Tensor:
    """(weight_decay / 2) * sum ||p||^2 as a 0-d tensor to add to the loss (autograd derives
    weight_decay * p). Raises ValueError for an empty parameter list."""
    ps = list(params)
    if not ps:
        raise ValueError("l2_penalty: no parameters given")
    return 0.5 * weight_decay * sum((p * p).sum() for p in ps)
