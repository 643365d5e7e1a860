"""2.01 relu_function: the check passes and catches a backward that lets gradient through x < 0."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.autograd.functions import ReLUFunction

Task = REGISTRY.get("autograd.relu_function")


def test_check_passes():
    rec = run_check(Task)
    assert {
        "torch_relu",
        "function",
        "no_autograd",
        "gradcheck + gradgradcheck float64",
        "forward on NaN / inf / signed zeros",
        "integer input rejected",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


class _LeakyBackward(ReLUFunction):
    """Backward passes the gradient where x < 0 too (forgets the mask on the negative side)."""

    @staticmethod
    def backward(ctx, grad_out):
        (mask,) = ctx.saved_tensors
        return grad_out.clone()


def test_gradient_through_negative_inputs_is_caught():
    class Wrong(Task):
        function_cls = _LeakyBackward

    expect_check_fails(Wrong, match="function")


def test_gradcheck_alone_catches_it():
    # the timed `function` is correct; only the Function under gradcheck is wrong
    class Wrong(Task):
        function_cls = _LeakyBackward

    W = planted(Wrong, "function", lambda self, x, g: Task().torch_relu(x, g))
    expect_check_fails(W, match="gradcheck")


def test_gradient_one_at_zero_is_caught():
    # x >= 0 as the mask: derivative 1 at x == 0, where torch uses 0 (the inputs hold exact zeros)
    def ge_mask(self, x, g):
        return lambda: (x.clamp_min(0), torch.where(x >= 0, g, torch.zeros(())))

    expect_check_fails(planted(Task, "no_autograd", ge_mask), match="no_autograd")
