"""Wrong Swish Functions: the mutants of m1.custom_activation, each a plausible mistake in the
hand-derived derivatives of :class:`kernels.autograd.functions.SwishFunction` (y = x sigmoid(beta x),
s = sigmoid(beta x), f' = s + beta x s (1 - s), f'' = beta s (1 - s) (2 + beta x (1 - 2 s))).
Same signatures as ``SwishFunction.apply(x, beta)``: x floating, any shape; beta a float.
"""

from __future__ import annotations

import torch

from kernels.autograd.functions import SwishFunction, _swish_parts

__all__ = ["SiLUDerivativeForAnyBeta", "WrongSecondDerivative"]


class _WrongSecond(torch.autograd.Function):
    """WRONG: first derivative right, second derivative missing the beta x (1 - 2s) term."""

    @staticmethod
    def forward(ctx, grad_out, x, beta):
        ctx.save_for_backward(grad_out, x)
        ctx.beta = beta
        return grad_out * _swish_parts(x, beta)[1]

    @staticmethod
    def backward(ctx, gg):
        grad_out, x = ctx.saved_tensors
        s, fprime = _swish_parts(x, ctx.beta)
        return gg * fprime, gg * grad_out * ctx.beta * s * (1 - s) * 2, None


class WrongSecondDerivative(SwishFunction):
    """WRONG: right forward and first derivative; double backward drops the beta x (1 - 2s) term of f''."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return _WrongSecond.apply(grad_out, x, ctx.beta), None


class SiLUDerivativeForAnyBeta(SwishFunction):
    """WRONG: SiLU's derivative (beta = 1) whatever beta is: right only at beta = 1."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_out * (s + x * s * (1 - s)), None
