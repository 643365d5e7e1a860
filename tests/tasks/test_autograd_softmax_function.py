"""2.06 softmax_function: the check passes and catches an unstable and a non-differentiable softmax."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.autograd.functions import SoftmaxFunction

Task = REGISTRY.get("autograd.softmax_function")


def test_check_passes():
    rec = run_check(Task)
    assert {
        "torch_softmax",
        "function",
        "composed",
        "finite for logits +-1e4",
        "equals torch.softmax at +-1e4",
        "gradcheck + gradgradcheck float64",
        "dim out of range rejected",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


class _NoMaxSubtraction(SoftmaxFunction):
    """exp(x) / sum exp(x): right for small logits, inf / inf = NaN at 1e4."""

    @staticmethod
    def forward(ctx, x, dim):
        e = x.exp()
        y = e / e.sum(dim=dim, keepdim=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y


def test_softmax_without_max_subtraction_is_caught_at_1e4():
    class Wrong(Task):
        function_cls = _NoMaxSubtraction

    err = expect_check_fails(Wrong, match="+-1e4")
    assert "not finite" in str(err)


class _DetachedRecompute(torch.autograd.Function):
    """Right first derivative, but backward recomputes y from a detached x: the backward is
    not differentiable in x, so double backward misses a term (gradgradcheck's job)."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.save_for_backward(x)
        ctx.dim = dim
        return torch.softmax(x, dim)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        y = torch.softmax(x.detach(), ctx.dim)
        return y * (g - (g * y).sum(ctx.dim, keepdim=True)), None


def test_non_differentiable_backward_is_caught_by_gradgradcheck():
    class Wrong(Task):
        function_cls = _DetachedRecompute

    err = expect_check_fails(Wrong, match="gradcheck")
    assert "gradgradcheck failed" in str(err)


def test_wrong_backward_sign_is_caught():
    class FlippedBackward(SoftmaxFunction):
        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return y * ((g * y).sum(ctx.dim, keepdim=True) - g), None

    expect_check_fails(
        planted(Task, "function", lambda self, x, g, dim: lambda: _fwd(FlippedBackward, x, g, dim)), match="function"
    )


def _fwd(fn, x, g, dim):
    leaf = x.detach().requires_grad_()
    y = fn.apply(leaf, dim % x.dim())
    return y.detach(), torch.autograd.grad(y, leaf, g)[0]
