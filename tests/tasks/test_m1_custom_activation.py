"""m1.custom_activation: Swish Function passes gradcheck/gradgradcheck; planted derivative bugs are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.autograd.functions import SwishFunction, _swish_parts

Task = REGISTRY.get("m1.custom_activation")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {
        "custom_function",
        "torch_silu",
        "gradcheck + gradgradcheck float64",
        "second derivative equals autograd's (float64)",
        "Function saves less for backward",
    } <= set(rec.checks)


class _WrongSecond(torch.autograd.Function):
    """First derivative right, second derivative missing the beta x (1 - 2s) term."""

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
    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return _WrongSecond.apply(grad_out, x, ctx.beta), None


class SiLUDerivativeForAnyBeta(SwishFunction):
    """Uses SiLU's derivative (beta = 1) whatever beta is: right only at beta = 1."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_out * (s + x * s * (1 - s)), None


def test_wrong_second_derivative_is_caught_by_gradgradcheck():
    class Wrong(Task):
        function_cls = WrongSecondDerivative

    expect_check_fails(Wrong, match="gradgradcheck")


def test_beta_ignored_in_backward_is_caught():
    class Wrong(Task):
        function_cls = SiLUDerivativeForAnyBeta

    expect_check_fails(Wrong, match="custom_function")


def test_wrong_timed_implementation_is_caught():
    wrong = planted(Task, "torch_silu", lambda self, x, g, beta: lambda: (F_silu_no_rescale(x, beta), g * 0.5))
    expect_check_fails(wrong, match="torch_silu")


def F_silu_no_rescale(x, beta):
    return torch.nn.functional.silu(beta * x)  # forgets the / beta
