"""Gradients by hand for one dense layer with a tanh and a squared error (1.05).

L = mean((tanh(x W + b) - y)**2) / 2 with x (N, D), W (D, M), b (M,), y (N, M). With
z = x W + b, h = tanh z, r = h - y, the chain rule gives dL/dz = r / (N M) * (1 - h**2)
(tanh' = 1 - tanh**2), dL/dW = x^T dL/dz (D, M), dL/db = sum_n dL/dz (M,), dL/dx = dL/dz W^T (N, D).
"""

from __future__ import annotations

import torch


def forward(x, w, b, y):
    """L = mean((tanh(x @ w + b) - y)**2) / 2, a 0-d tensor."""
    return 0.5 * (torch.tanh(x @ w + b) - y).pow(2).mean()


def grads_by_hand(x, w, b, y):
    """(L, dL/dx, dL/dw, dL/db) from the formulas in the module docstring."""
    h = torch.tanh(x @ w + b)  # (N, M)
    r = h - y
    loss = 0.5 * r.pow(2).mean()
    dz = (r / r.numel()) * (1 - h * h)  # (N, M): dL/dh times tanh'
    return loss, dz @ w.T, x.T @ dz, dz.sum(0)


class TanhMSE(torch.autograd.Function):
    """forward: L (0-d); backward: the hand-derived gradients for x, w, b (none for y)."""

    @staticmethod
    def forward(ctx, x, w, b, y):
        h = torch.tanh(x @ w + b)
        ctx.save_for_backward(x, w, h, y)
        return 0.5 * (h - y).pow(2).mean()

    @staticmethod
    def backward(ctx, grad_loss):
        x, w, h, y = ctx.saved_tensors
        dz = grad_loss * ((h - y) / h.numel()) * (1 - h * h)  # (N, M)
        return dz @ w.T, x.T @ dz, dz.sum(0), None
