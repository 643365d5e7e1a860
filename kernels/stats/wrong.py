"""Wrong statistics of repeated runs: the mutants of m6.variance_tracker, each a common mistake.

Each mirrors a function of :mod:`kernels.stats.intervals` with its signature; the task's
check against SciPy must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch

from kernels.stats.intervals import mean_std


def population_std(x: torch.Tensor) -> tuple[float, float]:
    """WRONG: (mean, std with ddof = 0): biased low for a few seeds (by sqrt((N-1)/N))."""
    m = float(x.double().mean())
    return m, float(x.double().std(correction=0))


def normal_interval(x: torch.Tensor, level: float = 0.95) -> tuple[float, float]:
    """WRONG: the normal quantile 1.96 where Student's t belongs (too narrow for few seeds)."""
    m, s = mean_std(x)
    half = 1.96 * s / x.numel() ** 0.5
    return m - half, m + half


def permutation_bootstrap(
    x: torch.Tensor, level: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> tuple[float, float]:
    """WRONG: 200 resamples drawn without replacement: every one is a permutation of ``x``,
    so all their means are equal and the interval collapses to a point."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.randperm(x.numel(), generator=g) for _ in range(200)])  # (200, N)
    means = x.double()[idx].mean(1)
    return float(means.min()), float(means.max())
