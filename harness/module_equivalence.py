"""A hand-written layer against torch's: same outputs, gradients and buffers, step by step.

Used by tasks that rebuild a ``torch.nn`` layer by hand (batch normalisation first): the
two modules start from the same state, see the same inputs and upstream gradients for some
training steps and then in eval mode, and every output, input gradient, parameter gradient
and buffer (running statistics, counters) must agree after each step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from harness.context import Context


def assert_module_matches(
    ctx: Context,
    own: nn.Module,
    ref: nn.Module,
    shape: Sequence[int],
    *,
    seed: int,
    where: str,
    modes: Sequence[str] = ("train", "train", "train", "eval"),
    buffer_names: dict[str, str] | None = None,
) -> None:
    """Assert ``own`` behaves as ``ref`` over ``modes`` steps on random inputs of ``shape``.

    ``own`` is loaded with ``ref``'s state first. Affine parameters of ``ref`` (``weight``,
    ``bias``) are randomised so that a swapped scale and shift shows. Inputs have mean 1 and
    variance 9 (a normalisation that ignores either shows). ``buffer_names`` maps a buffer to
    the name the check reports it under (default: the buffer's own name).

    Raises:
        CheckFailed: the first quantity that differs, named ``output (train)``, ``grad input
            (eval)``, ``grad weight (...)``, ``grad bias (...)`` or the buffer's name.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("weight", "bias"):
            p = getattr(ref, name, None)
            if isinstance(p, torch.Tensor):
                p.copy_(torch.randn(p.shape, generator=g))
    own.load_state_dict(ref.state_dict())
    labels = buffer_names or {}
    for mode in modes:
        ref.train(mode == "train")
        own.train(mode == "train")
        x = (torch.randn(tuple(shape), generator=g) * 3 + 1).to(ctx.device, ctx.dtype)  # mean 1, var 9
        gy = torch.randn(tuple(shape), generator=g).to(ctx.device, ctx.dtype)
        xr, xo = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        yr, yo = ref(xr), own(xo)
        yr.backward(gy)
        yo.backward(gy)
        ctx.assert_close(yo, yr, name=f"output ({mode})", where=where)
        ctx.assert_close(xo.grad, xr.grad, name=f"grad input ({mode})", where=where)
        own_params = dict(own.named_parameters())
        for name, p in ref.named_parameters():
            ctx.assert_close(own_params[name].grad, p.grad, name=f"grad {name} ({mode})", where=where)
        own.zero_grad()
        ref.zero_grad()
        own_buffers = dict(own.named_buffers())
        for name, b in ref.named_buffers():
            ctx.assert_close(own_buffers.get(name), b, name=labels.get(name, name), where=where)
