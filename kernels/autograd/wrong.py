"""Wrong custom Functions and gradients: the mutants of the autograd tasks (each a plausible mistake).

autograd.relu_function, autograd.softmax_function, autograd.huber_loss and fundamentals.manual_gradients
swap these in for the right versions in :mod:`kernels.autograd.functions`, :mod:`kernels.layers.losses`
and :mod:`kernels.autograd.tanh_mse`;
each check must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from kernels.autograd.functions import ReLUFunction, SoftmaxFunction
from kernels.autograd.tanh_mse import TanhMSE, grads_by_hand
from kernels.layers.losses import huber_loss


class LeakyBackwardReLU(ReLUFunction):
    """WRONG: backward passes the gradient where x < 0 too (forgets the mask on the negative side)."""

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out.clone()


def relu_ge_mask(x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    """WRONG: (relu(x), dL/dx) with x >= 0 as the mask: derivative 1 at x == 0, where torch uses 0."""
    return x.clamp_min(0), torch.where(x >= 0, g, torch.zeros((), dtype=g.dtype, device=g.device))


# -- autograd.softmax_function: wrong versions of SoftmaxFunction (forward(ctx, x, dim)) -------------
class NoMaxSubtractionSoftmax(SoftmaxFunction):
    """WRONG: exp(x) / sum exp(x): right for small logits, inf / inf = NaN at 1e4."""

    @staticmethod
    def forward(ctx, x, dim):
        e = x.exp()
        y = e / e.sum(dim=dim, keepdim=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y


class DetachedRecomputeSoftmax(torch.autograd.Function):
    """WRONG: the right first derivative, but backward recomputes y from a detached x: the backward
    is not differentiable in x, so double backward misses a term (gradgradcheck's job)."""

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


class FlippedBackwardSoftmax(SoftmaxFunction):
    """WRONG: the backward's sign flipped: dx = y (sum(g y) - g)."""

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * ((g * y).sum(ctx.dim, keepdim=True) - g), None


# -- autograd.huber_loss: wrong versions of kernels.layers.losses.huber_loss ----------------------
def _huber_by_hand(a: Tensor, b: Tensor, reduction: str, delta: float, quadratic, linear) -> Tensor:
    d = a - b
    loss = torch.where(d.abs() < delta, quadratic(d), linear(d.abs()))
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def huber_no_half(a: Tensor, b: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """WRONG: the quadratic branch d^2 without the 0.5 (arguments as ``huber_loss``)."""
    return _huber_by_hand(a, b, reduction, delta, lambda d: d * d, lambda ad: delta * (ad - 0.5 * delta))


def huber_no_linear_offset(a: Tensor, b: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """WRONG: the linear branch delta |d| without the -0.5 delta (arguments as ``huber_loss``)."""
    return _huber_by_hand(a, b, reduction, delta, lambda d: 0.5 * d * d, lambda ad: delta * ad)


def huber_mean_is_sum(a: Tensor, b: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """WRONG: reduction mean computed as sum (arguments as ``huber_loss``)."""
    return huber_loss(a, b, reduction="sum" if reduction == "mean" else reduction, delta=delta)


# -- fundamentals.manual_gradients: kernels.autograd.tanh_mse gone wrong ----------------------------
def grads_no_tanh_prime(x: Tensor, w: Tensor, b: Tensor, y: Tensor) -> tuple[Tensor, ...]:
    """WRONG: (L, dL/dx, dL/dw, dL/db) with dL/dz forgetting the factor tanh' = 1 - h**2."""
    h = torch.tanh(x @ w + b)  # (N, M)
    r = h - y
    dz = r / r.numel()  # forgot * (1 - h**2)
    return 0.5 * r.pow(2).mean(), dz @ w.T, x.T @ dz, dz.sum(0)


def grads_bias_averaged(x: Tensor, w: Tensor, b: Tensor, y: Tensor) -> tuple[Tensor, ...]:
    """WRONG: dL/db averaged over the batch instead of summed."""
    loss, gx, gw, gb = grads_by_hand(x, w, b, y)
    return loss, gx, gw, gb / x.shape[0]


class WrongTanhMSE(TanhMSE):
    """WRONG: the Function's backward gives dL/dW 1 % off (a float64 gradcheck sees it)."""

    @staticmethod
    def backward(ctx, grad_loss):
        gx, gw, gb, gy = TanhMSE.backward(ctx, grad_loss)
        return gx, gw * 1.01, gb, gy
