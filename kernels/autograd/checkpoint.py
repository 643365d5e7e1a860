"""Activation checkpointing by hand: keep a segment's input, recompute the segment in backward.

Training stores every activation that backward needs (the input of each Linear, the
output of each ReLU, ...), so activation memory grows with depth. Checkpointing a segment
runs its forward under ``no_grad`` (nothing inside is saved), keeps only the segment's
*input*, and in backward reruns the segment with grad enabled and backpropagates through
the fresh graph. Cost: one extra forward of each checkpointed segment. Saving: with L
equal layers cut into S segments the live activations drop from ~L layers' worth to
~S (the stored segment inputs) + L/S (one segment recomputed at a time), minimal near
S = sqrt(L) (Chen, Xu, Zhang & Guestrin 2016, "Training Deep Nets with Sublinear Memory
Cost").

:func:`checkpoint` is a segment-recompute ``torch.autograd.Function``, the same design as
``torch.utils.checkpoint.checkpoint(..., use_reentrant=True)``:

- forward (autograd runs it without grad): save the tensor inputs, the function, and the
  RNG state, then ``out = fn(*inputs)``;
- backward: detach the saved inputs (keeping ``requires_grad``), restore the RNG state
  inside ``torch.random.fork_rng`` (so dropout draws the same mask as in forward), rerun
  ``fn`` with grad enabled and call ``torch.autograd.backward(out, grad_out)``. Parameters
  used inside ``fn`` get their gradients accumulated into ``.grad`` by that inner backward;
  the input gradients are returned to the outer graph.

An empty tensor that requires grad is always passed as an extra input. Without it, a
segment whose inputs need no grad (the first one, fed the data batch) would produce an
output that needs no grad, its backward would never run and the parameters inside would
silently get no gradient (torch's reentrant variant only warns about that case).

Limits (shared with torch's reentrant variant): gradients of parameters inside ``fn``
arrive through ``.grad`` accumulation, so ``torch.autograd.grad(loss, params)`` does not see
them, and ``fn`` must be deterministic apart from the RNG (no data-dependent side effects).
``fn``'s outputs: a tensor or a tuple of tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["checkpoint", "checkpoint_sequential"]


def _rng_devices(tensors: Sequence[Tensor]) -> list[int]:
    """CUDA device indices among the inputs (their generators must be restored too)."""
    return sorted({t.device.index or 0 for t in tensors if t.is_cuda})


class _CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run_fn: Callable, preserve_rng_state: bool, _anchor: Tensor, *args: Any):
        ctx.run_fn = run_fn
        ctx.preserve_rng_state = preserve_rng_state
        tensors = [a for a in args if isinstance(a, Tensor)]
        ctx.devices = _rng_devices(tensors)
        if preserve_rng_state:
            ctx.cpu_rng = torch.get_rng_state()
            ctx.cuda_rng = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        # non-tensor arguments are kept as they are; tensors go through save_for_backward
        ctx.layout = [isinstance(a, Tensor) for a in args]
        ctx.others = [a for a in args if not isinstance(a, Tensor)]
        ctx.save_for_backward(*tensors)
        return run_fn(*args)  # autograd.Function.forward already runs without grad

    @staticmethod
    def backward(ctx, *grad_outputs: Tensor):
        saved = iter(ctx.saved_tensors)
        others = iter(ctx.others)
        args = []
        for is_tensor in ctx.layout:
            if is_tensor:
                t = next(saved)
                args.append(t.detach().requires_grad_(t.requires_grad))
            else:
                args.append(next(others))
        with torch.random.fork_rng(devices=ctx.devices, enabled=ctx.preserve_rng_state):
            if ctx.preserve_rng_state:
                torch.set_rng_state(ctx.cpu_rng)
                for d, state in zip(ctx.devices, ctx.cuda_rng):
                    torch.cuda.set_rng_state(state, d)
            with torch.enable_grad():
                outputs = ctx.run_fn(*args)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        pairs = [
            (o, g) for o, g in zip(outputs, grad_outputs) if isinstance(o, Tensor) and o.requires_grad and g is not None
        ]
        if pairs:
            torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        grads = tuple(a.grad if isinstance(a, Tensor) else None for a in args)
        return (None, None, None, *grads)


def checkpoint(fn: Callable[..., Any], *args: Any, preserve_rng_state: bool = True) -> Any:
    """``fn(*args)`` without keeping its intermediate activations; recomputed in backward.

    fn: a function of tensors (and other values) returning a tensor or a tuple of tensors,
        e.g. an ``nn.Sequential`` segment. Its parameters get gradients through ``.grad``.
    preserve_rng_state: restore the CPU (and CUDA) RNG state for the recomputation, so
        random ops (dropout) draw the same values as in the forward pass.
    Returns what ``fn`` returns. Raises TypeError if ``fn`` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"checkpoint: fn must be callable, got {type(fn).__name__}")
    anchor = torch.empty(0, requires_grad=True)  # see the module docstring: forces backward to run
    return _CheckpointFunction.apply(fn, preserve_rng_state, anchor, *args)


def checkpoint_sequential(
    layers: nn.Sequential | Sequence[nn.Module], segments: int, x: Tensor, *, preserve_rng_state: bool = True
) -> Tensor:
    """Run ``layers`` on x (N, ...) in ``segments`` contiguous chunks, checkpointing all but the
    last (whose activations backward needs right away), as torch.utils.checkpoint.checkpoint_sequential.

    segments: int in 1..len(layers); chunk sizes differ by at most one layer (larger first).
    Raises ValueError for a segment count out of range.
    """
    layers = list(layers)
    if isinstance(segments, bool) or not isinstance(segments, int) or not 1 <= segments <= len(layers):
        raise ValueError(
            f"checkpoint_sequential: segments must be an int in 1..{len(layers)} "
            f"(the number of layers), got {segments!r}"
        )
    base, extra = divmod(len(layers), segments)
    start = 0
    for s in range(segments):
        end = start + base + (1 if s < extra else 0)
        chunk = nn.Sequential(*layers[start:end])
        x = checkpoint(chunk, x, preserve_rng_state=preserve_rng_state) if s < segments - 1 else chunk(x)
        start = end
    return x
