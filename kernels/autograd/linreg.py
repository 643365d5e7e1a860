"""Linear regression by hand (2.02): a documented synthetic generator, the MSE and its hand-derived gradients.

Shapes: x (N, D) features, y (N,) targets, w (D,) weights, b () bias.
"""

from __future__ import annotations

import torch
from torch import Tensor


def make_regression(
    n: int,
    d: int,
    *,
    noise_std: float,
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Synthetic regression data with known weights (a generator, not a real data set).

    x ~ N(0, 1) of shape (n, d); w_true ~ N(0, 1) of shape (d,); b_true ~ N(0, 1) 0-d;
    y = x @ w_true + b_true + noise_std * N(0, 1), shape (n,). All from one CPU generator
    seeded with ``seed``, then moved to ``device`` in ``dtype``.

    Returns (x, y, w_true, b_true). Raises ValueError for n < 1, d < 1 or noise_std < 0.
    """
    if n < 1 or d < 1:
        raise ValueError(f"make_regression needs n >= 1 and d >= 1, got n={n}, d={d}")
    if not noise_std >= 0:
        raise ValueError(f"make_regression needs noise_std >= 0, got {noise_std}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    b = torch.randn((), generator=g, dtype=torch.float64)
    y = x @ w + b + noise_std * torch.randn(n, generator=g, dtype=torch.float64)  # (n,)
    return tuple(t.to(device=device, dtype=dtype) for t in (x, y, w, b))  # type: ignore[return-value]


def linreg_predict(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """y_hat = x @ w + b: x (N, D), w (D,), b () -> (N,)."""
    return x @ w + b


def linreg_loss_and_grads(x: Tensor, y: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean squared error L = mean((x w + b - y)^2) and its gradients, by the chain rule.

    With r = x w + b - y (N,): dL/dr = 2 r / N, so dL/dw = x^T (2 r / N) (D,) and
    dL/db = sum(2 r / N) = 2 mean(r) (). No autograd graph is built.

    x (N, D), y (N,), w (D,), b () of one floating dtype. Returns (L, dL/dw, dL/db).
    Raises ValueError when the shapes do not fit together (all four shown).
    """
    if x.dim() != 2 or y.shape != (x.shape[0],) or w.shape != (x.shape[1],) or b.dim() != 0:
        raise ValueError(
            f"linreg_loss_and_grads: need x (N, D), y (N,), w (D,), b (); got x {tuple(x.shape)}, "
            f"y {tuple(y.shape)}, w {tuple(w.shape)}, b {tuple(b.shape)}"
        )
    r = x @ w + b - y  # (N,)
    dr = r * (2.0 / r.shape[0])  # (N,) dL/dr
    return (r * r).mean(), x.T @ dr, dr.sum()
