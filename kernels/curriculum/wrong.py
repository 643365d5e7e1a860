"""Wrong pacing pieces: the mutants of advanced.curriculum (each one a plausible mistake).

The task swaps these in for :mod:`kernels.curriculum.pacing`'s ``exposed`` and
``linear_pacing``; its check must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations


def floor_exposed(fraction: float, n: int) -> int:
    """WRONG: int(fraction n), at least 1: rounds the exposed count down (2.4 of 10 -> 2, not 3)."""
    return max(1, int(fraction * n))


def never_grows(step: int, total_steps: int, start: float, full_at: float) -> float:
    """WRONG: g(t) = start at every step: the pool never grows past the easiest share."""
    return start
