"""kernels/autograd/functions.py: custom autograd Functions against torch, gradcheck and gradgradcheck."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

from kernels.autograd.functions import (
    SoftmaxFunction,
    relu,
    softmax,
    squared_relu,
    swish,
    swish_reference,
)


def _x(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
    # keep entries away from ReLU's kink at 0, where the finite differences of gradcheck
    # straddle two slopes
    x = torch.where(x.abs() < 1e-2, torch.full_like(x, 0.5), x)
    return x.requires_grad_()


ACTIVATIONS = {
    "relu": (relu, F.relu),
    "softmax_dim1": (lambda x: softmax(x, 1), lambda x: torch.softmax(x, 1)),
    "softmax_dim0": (lambda x: softmax(x, 0), lambda x: torch.softmax(x, 0)),
    "swish_beta1": (lambda x: swish(x, 1.0), F.silu),
    "swish_beta1.7": (lambda x: swish(x, 1.7), lambda x: swish_reference(x, 1.7)),
    "squared_relu": (squared_relu, lambda x: F.relu(x) ** 2),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_backward_equal_torch(name):
    mine, ref = ACTIVATIONS[name]
    for dtype in (torch.float64, torch.float32):
        x1 = _x(4, 5, 3, seed=1).detach().to(dtype).requires_grad_()
        x2 = x1.detach().clone().requires_grad_()
        g = torch.randn(4, 5, 3, dtype=dtype, generator=torch.Generator().manual_seed(2))
        y1, y2 = mine(x1), ref(x2)
        torch.testing.assert_close(y1, y2)
        y1.backward(g)
        y2.backward(g)
        torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_gradcheck_and_gradgradcheck_float64(name):
    mine, _ = ACTIVATIONS[name]
    x = _x(3, 4, seed=3)
    assert gradcheck(mine, (x,))
    assert gradgradcheck(mine, (x,))


def test_swish_second_derivative_equals_autograd_derived():
    # the hand-derived f'' inside _SwishGradFunction against autograd's own second
    # derivative of x * sigmoid(beta x)
    x1 = _x(50, seed=4)
    x2 = x1.detach().clone().requires_grad_()
    (g1,) = torch.autograd.grad(swish(x1, 1.3).sum(), x1, create_graph=True)
    (g2,) = torch.autograd.grad(swish_reference(x2, 1.3).sum(), x2, create_graph=True)
    (h1,) = torch.autograd.grad(g1.sum(), x1)
    (h2,) = torch.autograd.grad(g2.sum(), x2)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h1, h2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_stable_for_logits_1e4(dtype):
    x = torch.tensor([[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4 + 2.0, -1e4, -1e4]], dtype=dtype)
    y = softmax(x.requires_grad_(), 1)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, torch.softmax(x.detach(), 1))
    y.backward(torch.ones_like(y) * torch.arange(4, dtype=dtype))
    assert torch.isfinite(x.grad).all()
    xr = x.detach().clone().requires_grad_()
    torch.softmax(xr, 1).backward(torch.ones_like(y) * torch.arange(4, dtype=dtype))
    torch.testing.assert_close(x.grad, xr.grad)


def test_gradcheck_softmax_at_large_logits():
    x = torch.tensor([[1e4, -1e4, 3.0], [2.0, 1e4 - 0.5, 1e4]], dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: softmax(t, 1), (x,))
    assert gradgradcheck(lambda t: softmax(t, 1), (x,))


def test_relu_inf_upstream_gradient_gives_zero_not_nan():
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    relu(x).backward(torch.tensor([float("inf"), 1.0]))
    assert x.grad.tolist() == [0.0, 1.0]


# ---------------------------------------------------------------- planted bugs


class _NaiveSoftmax(torch.autograd.Function):
    """Planted bug: no max subtraction, so exp(1e4) overflows to inf and inf/inf = NaN."""

    @staticmethod
    def forward(ctx, x, dim):
        e = x.exp()
        y = e / e.sum(dim, keepdim=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        return SoftmaxFunction.backward(ctx, g)


def test_planted_softmax_without_max_subtraction_is_caught():
    x = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.float64)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(_NaiveSoftmax.apply(x, 1), torch.softmax(x, 1))


class _WrongSquaredReLU(torch.autograd.Function):
    """Planted bug: derivative relu(x) instead of 2 relu(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0) ** 2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.clamp_min(0)


class _NoDoubleBackwardSwish(torch.autograd.Function):
    """Planted bug: correct first derivative computed on detached tensors, so the
    backward is not differentiable and the second derivative comes out wrong."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        xd = x.detach()
        s = torch.sigmoid(xd)
        return g * (s + xd * s * (1 - s))


def test_planted_wrong_derivative_fails_gradcheck():
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        gradcheck(_WrongSquaredReLU.apply, (_x(3, 4, seed=5),))


def test_planted_non_differentiable_backward_fails_gradgradcheck():
    x = _x(3, 4, seed=6)
    assert gradcheck(_NoDoubleBackwardSwish.apply, (x,))  # first order is right...
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        gradgradcheck(_NoDoubleBackwardSwish.apply, (x,))  # ...second order is not


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", [relu, lambda x: softmax(x, 0), swish, squared_relu])
def test_integer_input_raises_type_error(fn):
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.arange(3))


def test_softmax_bad_dim_raises_index_error():
    with pytest.raises(IndexError, match="Dimension out of range"):
        softmax(torch.randn(2, 3), 2)


def test_softmax_zero_dim_input_matches_torch():
    x = torch.tensor(3.0)
    torch.testing.assert_close(softmax(x, 0), torch.softmax(x, 0))
