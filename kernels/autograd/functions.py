"""Custom ``torch.autograd.Function`` operators with hand-written backward passes.

Each Function here is checked by ``torch.autograd.gradcheck`` *and* ``gradgradcheck`` in
float64 (tests/kernels/test_functions.py). For double backward to work, every backward is
written either in differentiable torch ops (autograd can then differentiate the backward
itself) or as a second Function with its own hand-derived backward (Swish, below).

Functions (autograd.Function subclasses) and their functional wrappers:

- ``ReLUFunction`` / ``relu(x)``: max(x, 0); derivative 0 where x <= 0, else 1 (0 at x == 0,
  and the upstream gradient passes at x = NaN, as torch's threshold_backward).
- ``SoftmaxFunction`` / ``softmax(x, dim, dtype=None)``: exp(x - max) / sum exp(x - max). Subtracting the
  row max makes it finite for logits of +-1e4 (exp(1e4) overflows even float64).
  Backward: dx = y * (g - sum(g * y, dim)), the Jacobian-vector product of softmax.
- ``SwishFunction`` / ``swish(x, beta)``: x * sigmoid(beta * x) (Ramachandran et al. 2017,
  "Searching for Activation Functions"); beta = 1 is SiLU (F.silu). First *and* second
  derivatives are hand-derived (``_SwishGradFunction``).
- ``SquaredReLUFunction`` / ``squared_relu(x)``: relu(x)^2 (So et al. 2021, "Primer");
  derivative 2 * relu(x), second derivative 2 * 1[x > 0].

All accept any shape and floating dtype; outputs have the input's shape and dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "ReLUFunction",
    "SoftmaxFunction",
    "SwishFunction",
    "SquaredReLUFunction",
    "relu",
    "softmax",
    "softmax_composed",
    "swish",
    "squared_relu",
    "swish_reference",
]


def _check_floating(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expects a floating-point tensor, got dtype {x.dtype}; convert with x.float() or x.double()"
        )


class ReLUFunction(torch.autograd.Function):
    """ReLU: y = max(x, 0). Backward: dx = g where not x <= 0, else 0.

    The mask is written ``~(x <= 0)``, not ``x > 0``: the two differ only at NaN, where torch's
    threshold_backward passes the upstream gradient through.

    The mask is a constant of x (its derivative is 0 almost everywhere), so the backward
    ``where(mask, g, 0)`` is differentiable in g, which is all double backward needs.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        mask = ~(x <= 0)  # True at NaN, as torch
        ctx.save_for_backward(mask)
        # clamp_min propagates NaN exactly as torch.relu does.
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        (mask,) = ctx.saved_tensors
        # where(), not g * mask: an inf upstream gradient at x <= 0 must give 0, not NaN
        # (torch's threshold_backward does the same).
        return torch.where(mask, grad_out, torch.zeros((), dtype=grad_out.dtype))


class SoftmaxFunction(torch.autograd.Function):
    """Numerically stable softmax along ``dim``.

    Forward: y = exp(x - max(x)) / sum(exp(x - max(x))). The max subtraction changes nothing
    mathematically (softmax is shift-invariant) but keeps exp() <= 1, so logits of +-1e4
    give finite results. Backward (Jacobian diag(y) - y y^T applied to g):
    dx = y * (g - sum(g * y, dim, keepdim=True)).

    ``y`` is saved as an *output*: during double backward autograd routes gradients that
    reach ``y`` back through this Function's backward again, so gradgradcheck passes
    without a separate second-derivative formula.
    """

    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        if x.shape[dim] == 0:
            # An empty softmax dim: amax has no identity, and torch returns an empty tensor.
            y = torch.empty_like(x)
        else:
            shifted = x - x.amax(dim=dim, keepdim=True)
            e = shifted.exp()
            y = e / e.sum(dim=dim, keepdim=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (y,) = ctx.saved_tensors
        dot = (grad_out * y).sum(dim=ctx.dim, keepdim=True)
        return y * (grad_out - dot), None


def _swish_parts(x: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """Return (s, f') where s = sigmoid(beta x) and f'(x) = s + beta x s (1 - s)."""
    s = torch.sigmoid(beta * x)
    return s, s + beta * x * s * (1 - s)


class _SwishGradFunction(torch.autograd.Function):
    """dx = g * f'(x) for f(x) = x sigmoid(beta x), with a hand-derived backward.

    f''(x) = beta s (1 - s) (2 + beta x (1 - 2 s)), s = sigmoid(beta x)
    (differentiate f' = s + beta x s (1 - s) using ds/dx = beta s (1 - s)).
    Backward of (g, x) -> g f'(x): d/dg = gg * f'(x), d/dx = gg * g * f''(x).
    """

    @staticmethod
    def forward(ctx, grad_out: Tensor, x: Tensor, beta: float) -> Tensor:
        ctx.save_for_backward(grad_out, x)
        ctx.beta = beta
        _, fprime = _swish_parts(x, beta)
        return grad_out * fprime

    @staticmethod
    def backward(ctx, gg: Tensor):
        grad_out, x = ctx.saved_tensors
        beta = ctx.beta
        s, fprime = _swish_parts(x, beta)
        fsecond = beta * s * (1 - s) * (2 + beta * x * (1 - 2 * s))
        return gg * fprime, gg * grad_out * fsecond, None


class SwishFunction(torch.autograd.Function):
    """Swish: y = x * sigmoid(beta * x). beta = 1 equals ``F.silu``.

    Backward calls ``_SwishGradFunction``, whose own backward holds the hand-derived second
    derivative; both levels are checked by gradcheck / gradgradcheck.
    """

    @staticmethod
    def forward(ctx, x: Tensor, beta: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.beta = beta
        return x * torch.sigmoid(beta * x)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (x,) = ctx.saved_tensors
        return _SwishGradFunction.apply(grad_out, x, ctx.beta), None


class SquaredReLUFunction(torch.autograd.Function):
    """Squared ReLU: y = relu(x)^2. Backward: dx = 2 * g * relu(x).

    The backward is written in differentiable ops of the saved input, so autograd derives
    the second derivative 2 * 1[x > 0] by itself.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        r = x.clamp_min(0)
        return r * r

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return 2 * grad_out * x.clamp_min(0)


def relu(x: Tensor) -> Tensor:
    """ReLU through ``ReLUFunction``. x: any shape, floating dtype. Returns same shape/dtype.

    Raises TypeError for a non-tensor or integer tensor.
    """
    _check_floating(x, "relu")
    return ReLUFunction.apply(x)


def softmax(x: Tensor, dim: int = -1, dtype: torch.dtype | None = None) -> Tensor:
    """Stable softmax along ``dim`` through ``SoftmaxFunction`` (equals torch.softmax).

    x: any shape, floating dtype (or any dtype when ``dtype`` is given). ``dtype``: as
    ``torch.softmax``'s, x is cast to it *before* the operation (so float16 logits can be
    normalised in float32, and the gradient flows back cast to x's dtype).
    Raises TypeError for integer input without a floating ``dtype``, IndexError (as torch)
    when dim is out of range.
    """
    if dtype is not None:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"softmax: dtype={dtype!r}: must be a floating torch.dtype (or None)")
        if not isinstance(x, Tensor):
            raise TypeError(f"softmax expects a torch.Tensor, got {type(x).__name__}")
        x = x.to(dtype)
    _check_floating(x, "softmax")
    if x.dim() == 0:
        x1 = x.reshape(1)  # (1,) torch treats a 0-d tensor as one element
        return SoftmaxFunction.apply(x1, 0).reshape(())
    if not -x.dim() <= dim < x.dim():
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-x.dim()}, {x.dim() - 1}], but got {dim})"
        )
    return SoftmaxFunction.apply(x, dim % x.dim())


def softmax_composed(x: Tensor, dim: int = -1) -> Tensor:
    """Stable softmax from four differentiable torch ops (amax, sub, exp, div by sum): the
    no-Function version, whose backward autograd derives op by op, saving every intermediate.
    Same shapes and dtype as :func:`softmax`; dim as torch's (IndexError when out of range)."""
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim, keepdim=True)


def swish(x: Tensor, beta: float = 1.0) -> Tensor:
    """Swish x * sigmoid(beta x) with hand-written first and second derivatives.

    x: any shape, floating dtype; beta: a Python float (not learned here).
    """
    _check_floating(x, "swish")
    return SwishFunction.apply(x, float(beta))


def swish_reference(x: Tensor, beta: float = 1.0) -> Tensor:
    """The same activation built from plain torch ops; autograd derives its backward."""
    return x * torch.sigmoid(beta * x)


def squared_relu(x: Tensor) -> Tensor:
    """relu(x)^2 through ``SquaredReLUFunction``. x: any shape, floating dtype."""
    _check_floating(x, "squared_relu")
    return SquaredReLUFunction.apply(x)
