"""z-tests for checks of random processes (dropout masks, samplers): counts against a rate.

A check of a random op cannot compare with an exact value; it compares a count with its
binomial distribution and fails only when the deviation is far beyond chance. Each test is
two-sided at :data:`ALPHA` (normal approximation, valid when n q (1 - q) is large, say >= 25),
so a check running k tests falsely fails with probability at most k * ALPHA (union bound).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.context import Context

#: two-sided significance of each z-test: the false-failure rate of one test
ALPHA = 1e-6
#: |z| above which a test fails (4.8916 for ALPHA = 1e-6)
Z_CRIT = NormalDist().inv_cdf(1 - ALPHA / 2)


def z_binomial(k: int, n: int, q: float) -> float:
    """z-score of ``k`` successes out of ``n`` Bernoulli(``q``) trials; q in (0, 1)."""
    return (k - n * q) / math.sqrt(n * q * (1 - q))


def z_two_proportion(k1: int, k2: int, n: int) -> float:
    """z-score of the difference of two counts out of ``n`` trials each (pooled proportion)."""
    pooled = (k1 + k2) / (2 * n)
    return (k1 - k2) / math.sqrt(2 * n * pooled * (1 - pooled))


def expect_z(ctx: Context, name: str, z: float, where: str) -> None:
    """Fail the check ``name`` (``CheckFailed``) when ``|z| > Z_CRIT``."""
    ctx.expect(
        abs(z) <= Z_CRIT,
        f"{name} [{where}]: |z| = {abs(z):.2f} > {Z_CRIT:.2f} (two-sided test at alpha = {ALPHA:g})",
        name=name,
    )
