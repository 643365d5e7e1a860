"""Five small kernels written twice: as Python loops and as vectorized tensor code.

Each ``*_loop`` function is the obvious element-by-element version (one interpreter trip
per output element, per input element or per time step); each ``*_vec`` computes the same
function with a handful of tensor operations.  They are the material of task
m4.vectorize_loops, which checks that the pairs agree and times them.

Kernels (shapes; every function takes and returns tensors on the input's device):

* pairwise distances: ``x (N, D), y (M, D) -> (N, M)``, ``out[i, j] = ||x_i - y_j||_2``
  (what ``torch.cdist(x, y, p=2)`` computes).
* running mean: ``x (T, ...) , window w -> (T - w + 1, ...)``, ``out[t] = mean(x[t : t + w])``
  (numpy's ``convolve(x, ones(w) / w, "valid")`` along dim 0).
* histogram: ``x (any shape), bins, lo, hi -> (bins,) int64`` counts of equal-width bins
  over ``[lo, hi]``; a value equal to ``hi`` falls in the last bin, values outside
  ``[lo, hi]`` and NaN are ignored (``torch.histc``'s rule, with integer counts).
* Gram matrix: ``x (N, D) -> (N, N)``, ``out[i, j] = <x_i, x_j>`` (``x @ x.T``).
* exponential moving average: ``x (T, ...), alpha -> (T, ...)``,
  ``y[0] = x[0]``, ``y[t] = alpha * x[t] + (1 - alpha) * y[t - 1]``
  (pandas' ``ewm(alpha=alpha, adjust=False).mean()``).

How each is vectorized, and what it costs:

* distances: ``||x||^2 + ||y||^2 - 2 x y^T`` would be one matmul but cancels catastrophically
  for close points; the version here broadcasts ``x[:, None, :] - y[None, :, :]`` (an
  (N, M, D) temporary, D times the output) and reduces it: exact to rounding, memory-hungry.
* running mean: a prefix sum in float64, ``(c[t + w] - c[t]) / w``: O(T) instead of O(T w),
  and float64 keeps the difference of two large prefix sums accurate for float32 data.
* histogram: the bin index ``floor((x - lo) * bins / (hi - lo))`` computed in float64 (the
  loop's Python floats are float64 too, so both round every boundary the same way), then
  ``torch.bincount``.
* Gram: one matmul (BLAS).
* EMA: a linear recurrence ``y[t] = a[t] * y[t - 1] + b[t]`` solved by a Hillis-Steele
  parallel scan: log2(T) rounds of tensor ops composing affine maps
  ``(a2, b2) o (a1, b1) = (a2 a1, a2 b1 + b2)``.  O(T log T) work but only log2(T) Python
  steps; every coefficient is a power of ``1 - alpha`` <= 1, so nothing overflows (the closed
  form ``sum_k alpha (1 - alpha)^(t - k) x_k`` written with ``(1 - alpha)^-k`` does).

Errors: every function raises ValueError for shapes that do not fit (naming the shape), for
``window`` outside ``[1, T]``, ``bins < 1``, ``hi <= lo`` and ``alpha`` outside ``(0, 1]``.
"""

from __future__ import annotations

import torch

__all__ = [
    "KERNELS",
    "ema_loop",
    "ema_vec",
    "gram_loop",
    "gram_vec",
    "histogram_loop",
    "histogram_vec",
    "pairwise_distances_loop",
    "pairwise_distances_vec",
    "running_mean_loop",
    "running_mean_vec",
]


# -- argument checks ------------------------------------------------------------------------


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"pairwise distances take x (N, D) and y (M, D) with one D; got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def _check_window(x: torch.Tensor, window: int) -> None:
    if x.dim() < 1:
        raise ValueError("running mean needs x of shape (T, ...), got a 0-dim tensor")
    if not 1 <= window <= x.shape[0]:
        raise ValueError(f"window must be in [1, T={x.shape[0]}], got {window}")


def _check_bins(bins: int, lo: float, hi: float) -> None:
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if not hi > lo:
        raise ValueError(f"the histogram range needs hi > lo, got lo={lo}, hi={hi}")


def _check_gram(x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(f"the Gram matrix takes x of shape (N, D), got {tuple(x.shape)}")


def _check_alpha(x: torch.Tensor, alpha: float) -> None:
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"EMA needs x of shape (T, ...) with T >= 1, got {tuple(x.shape)}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")


# -- pairwise distances ---------------------------------------------------------------------


def pairwise_distances_loop(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) Euclidean distances, one Python trip per output element."""
    _check_pair(x, y)
    out = torch.empty(x.shape[0], y.shape[0], dtype=x.dtype, device=x.device)
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            d = x[i] - y[j]  # (D,)
            out[i, j] = torch.sqrt((d * d).sum())
    return out


def pairwise_distances_vec(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) Euclidean distances by broadcasting (an (N, M, D) temporary)."""
    _check_pair(x, y)
    d = x[:, None, :] - y[None, :, :]  # (N, M, D)
    return torch.sqrt((d * d).sum(-1))  # (N, M)


# -- running mean ---------------------------------------------------------------------------


def running_mean_loop(x: torch.Tensor, window: int) -> torch.Tensor:
    """(T, ...) -> (T - w + 1, ...) means of ``window`` consecutive rows, one trip per output row."""
    _check_window(x, window)
    out = torch.empty(x.shape[0] - window + 1, *x.shape[1:], dtype=x.dtype, device=x.device)
    for t in range(out.shape[0]):
        out[t] = x[t : t + window].mean(0)
    return out


def running_mean_vec(x: torch.Tensor, window: int) -> torch.Tensor:
    """Same as :func:`running_mean_loop` from a float64 prefix sum: O(T), no Python loop."""
    _check_window(x, window)
    c = torch.zeros(x.shape[0] + 1, *x.shape[1:], dtype=torch.float64, device=x.device)  # (T + 1, ...)
    torch.cumsum(x.to(torch.float64), dim=0, out=c[1:])
    return ((c[window:] - c[:-window]) / window).to(x.dtype)  # (T - w + 1, ...)


# -- histogram ------------------------------------------------------------------------------


def histogram_loop(x: torch.Tensor, bins: int, lo: float, hi: float) -> torch.Tensor:
    """(any) -> (bins,) int64 counts over [lo, hi] (hi in the last bin), one trip per element."""
    _check_bins(bins, lo, hi)
    counts = [0] * bins
    width = hi - lo
    for v in x.reshape(-1).tolist():  # Python floats: float64 arithmetic below
        if not lo <= v <= hi:  # also False for NaN
            continue
        k = int((v - lo) * bins / width)
        counts[min(k, bins - 1)] += 1  # v == hi lands in the last bin
    return torch.tensor(counts, dtype=torch.int64, device=x.device)


def histogram_vec(x: torch.Tensor, bins: int, lo: float, hi: float) -> torch.Tensor:
    """Same as :func:`histogram_loop` with one float64 bin-index pass and ``torch.bincount``."""
    _check_bins(bins, lo, hi)
    v = x.reshape(-1).to(torch.float64)  # (numel,)
    v = v[(v >= lo) & (v <= hi)]  # drops out-of-range values and NaN
    k = ((v - lo) * bins / (hi - lo)).floor().long().clamp_(max=bins - 1)  # same formula as the loop
    return torch.bincount(k, minlength=bins)


# -- Gram matrix ----------------------------------------------------------------------------


def gram_loop(x: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, N) inner products, one dot product per upper-triangle element (mirrored)."""
    _check_gram(x)
    n = x.shape[0]
    out = torch.empty(n, n, dtype=x.dtype, device=x.device)
    for i in range(n):
        for j in range(i, n):
            out[i, j] = out[j, i] = torch.dot(x[i], x[j])
    return out


def gram_vec(x: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, N) = x @ x.T (one BLAS call)."""
    _check_gram(x)
    return x @ x.T


# -- exponential moving average -------------------------------------------------------------


def ema_loop(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """(T, ...) -> (T, ...): ``y[t] = alpha x[t] + (1 - alpha) y[t-1]``, ``y[0] = x[0]``; one trip per step."""
    _check_alpha(x, alpha)
    out = torch.empty_like(x)
    out[0] = x[0]
    for t in range(1, x.shape[0]):
        out[t] = alpha * x[t] + (1.0 - alpha) * out[t - 1]
    return out


def ema_vec(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Same as :func:`ema_loop` by a Hillis-Steele scan over affine maps (log2(T) tensor steps).

    Step t is the map ``y -> a[t] y + b[t]`` with ``a[t] = 1 - alpha``, ``b[t] = alpha x[t]``
    (``a[0] = 0``, ``b[0] = x[0]``).  After the round with offset s, entry t holds the
    composition of the maps t-2s+1 .. t; once s >= T every entry is the full prefix, and its
    ``b`` is y[t] (``a`` multiplies y[-1], which does not exist).
    """
    _check_alpha(x, alpha)
    t_len = x.shape[0]
    b = x * alpha  # (T, ...)
    b[0] = x[0]
    a = torch.full((t_len,) + (1,) * (x.dim() - 1), 1.0 - alpha, dtype=x.dtype, device=x.device)  # (T, 1...)
    a[0] = 0.0
    s = 1
    while s < t_len:
        # compose with the prefix ending s steps earlier: (a, b) <- (a, b) o (a_prev, b_prev)
        b = torch.cat([b[:s], a[s:] * b[:-s] + b[s:]])
        a = torch.cat([a[:s], a[s:] * a[:-s]])
        s *= 2
    return b


#: name -> (loop, vectorized); the order of task m4.vectorize_loops.
KERNELS = {
    "pairwise_distances": (pairwise_distances_loop, pairwise_distances_vec),
    "running_mean": (running_mean_loop, running_mean_vec),
    "histogram": (histogram_loop, histogram_vec),
    "gram": (gram_loop, gram_vec),
    "ema": (ema_loop, ema_vec),
}
