"""What autograd keeps and what double backward gives, measured from outside a function:
:func:`saved_for_backward` (tensors and bytes saved for backward) and :func:`second_derivative`
(elementwise f'' through double backward). Used by m1.custom_activation to compare a hand
``autograd.Function`` with the graph autograd derives.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def saved_for_backward(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[int, int]:
    """(tensors, bytes) autograd saves for backward in ``fn(x)``, distinct storages counted once.

    Counted with ``torch.autograd.graph.saved_tensors_hooks`` on a fresh leaf sharing x's
    storage (x itself is never marked); bytes are whole storages (``untyped_storage().nbytes()``).
    """
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    leaf = x.detach().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(leaf)
    return len(seen), sum(seen.values())


def second_derivative(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """d/dx of (dy/dx . v) for an elementwise ``fn``, with v = linspace(-1, 1) in x's shape: f''(x) * v.

    Goes through double backward (``create_graph=True``), so a Function whose backward is not
    itself differentiable raises. Same shape, dtype and device as ``x``.
    """
    leaf = x.detach().requires_grad_()
    v = torch.linspace(-1, 1, leaf.numel(), dtype=leaf.dtype, device=leaf.device).reshape(leaf.shape)
    (d1,) = torch.autograd.grad(fn(leaf), leaf, v, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), leaf)
    return d2
