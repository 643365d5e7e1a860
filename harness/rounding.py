"""Rounding-error bounds for checks against a float64 reference.

:func:`error_bound` gives, per output element, how far a float32 (or other dtype) result
of add, sum or matmul may lie from the exact value, so a check can use the bound as its
tolerance instead of a guessed ``atol``.
"""

from __future__ import annotations

import math

import torch


def error_bound(
    op: str, inputs: tuple[torch.Tensor, ...], ref: torch.Tensor, dtype: torch.dtype, lam: float = 10.0
) -> torch.Tensor:
    """Elementwise bound on |computed - exact| for ``op`` in ``dtype`` (float64 tensor).

    Args:
        op: ``add`` (a + b), ``sum`` (a full reduction of inputs[0]) or ``matmul`` (a @ b).
        inputs: the operands; ref: the exact (float64) result.
        lam: the probabilistic bound's constant.

    add: one correctly rounded operation, u |exact|. sum and matmul (n terms per
    output): gamma * sum |terms| with gamma the smaller of the worst-case n u / (1 - n u)
    (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., 3.1) and the
    probabilistic lam sqrt(n) u of Higham & Mary (SIAM J. Sci. Comput. 41(5), 2019), which
    holds for any summation order with probability at least 1 - 2 n exp(-lam**2 / 2) (about
    1e-18 for lam = 10 at these sizes) when rounding errors are independent; without it a
    sum of 4097 terms would hide errors of 1 ulp of the largest partial sums.

    Raises:
        ValueError: n u >= 1/2, where the worst-case bound no longer holds.
    """
    u = torch.finfo(dtype).eps / 2  # unit roundoff
    xs = [t.double() for t in inputs]
    if op == "add":
        return u * ref.abs()
    n = xs[0].numel() if op == "sum" else xs[0].shape[-1]
    if n * u >= 0.5:
        raise ValueError(f"{op}: the bound needs n * u < 1/2; n = {n} is too large for {dtype}")
    gamma = min(n * u / (1 - n * u), lam * math.sqrt(n) * u)
    return gamma * (xs[0].abs().sum() if op == "sum" else xs[0].abs() @ xs[1].abs())
