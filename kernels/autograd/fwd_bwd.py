"""``fwd_bwd``: forward and backward of one call through autograd, the timed unit of the
custom-Function and loss tasks (2.01, 2.03, 2.06, 1.05).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def fwd_bwd(fn: Callable[..., Tensor], tensors: Sequence[Tensor], g: Tensor | None = None) -> tuple[Tensor, ...]:
    """(y, dL/dt for each t in ``tensors``) with y = fn(*leaves) and L = sum(y * g).

    Each tensor becomes a fresh leaf that shares its storage (``detach().requires_grad_()``),
    so the inputs themselves are never marked or mutated and every call builds its own
    graph. ``g`` has y's shape; None only for a scalar y (then dL/dy = 1). y comes back
    detached; the gradients have the shapes and dtypes of ``tensors``.
    """
    leaves = [t.detach().requires_grad_() for t in tensors]
    y = fn(*leaves)
    return (y.detach(), *torch.autograd.grad(y, leaves, g))
