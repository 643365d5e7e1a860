"""Parameter sets with gradients for checking gradient-clipping code against torch's.

:func:`grad_set` builds small parameters of mixed shapes whose ``.grad`` holds a chosen
special case (tiny, all-zero, ``None`` beside a zero-element gradient, no parameters);
:func:`copy_params` gives fresh copies so each implementation clips the same gradients.
"""

from __future__ import annotations

import torch

#: Special cases :func:`grad_set` knows.
KINDS = ("mixed", "tiny", "zeros", "with_none_and_empty", "none")


def grad_set(kind: str, dtype: torch.dtype, device, seed: int) -> list[torch.nn.Parameter]:
    """Parameters of shapes (5, 3), (7,), (4, 4), (2, 3, 2) with N(0, (0.1 i)^2) gradients.

    ``kind``: ``mixed`` (as above), ``tiny`` (gradients x 1e-3), ``zeros``,
    ``with_none_and_empty`` (the third .grad None, plus a zero-element parameter and
    gradient), ``none`` (no parameters). Raises ValueError for another kind.
    """
    if kind not in KINDS:
        raise ValueError(f"grad_set: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind == "none":
        return []
    gen = torch.Generator().manual_seed(seed)
    params = []
    for i, shape in enumerate([(5, 3), (7,), (4, 4), (2, 3, 2)]):
        p = torch.nn.Parameter(torch.randn(shape, generator=gen, dtype=dtype).to(device))
        g = torch.randn(shape, generator=gen, dtype=dtype) * (0.1 * (i + 1))
        if kind == "tiny":
            g = g * 1e-3
        elif kind == "zeros":
            g = torch.zeros(shape, dtype=dtype)
        p.grad = g.to(device)
        params.append(p)
    if kind == "with_none_and_empty":
        params[2].grad = None
        empty = torch.nn.Parameter(torch.empty(0, dtype=dtype, device=device))
        empty.grad = torch.empty(0, dtype=dtype, device=device)
        params.append(empty)
    return params


def copy_params(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    """Fresh parameters with cloned data and gradients (None stays None)."""
    out = []
    for p in params:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


def grads(params) -> list[torch.Tensor]:
    """The gradients that exist (``none_pattern`` says where .grad is None)."""
    return [p.grad for p in params if p.grad is not None]


def none_pattern(params) -> list[bool]:
    """Per parameter: is its .grad None?"""
    return [p.grad is None for p in params]
