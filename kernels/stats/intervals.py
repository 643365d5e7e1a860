"""Mean, standard deviation and 95 % confidence intervals of a few runs, written out.

Given x (N,) float64 (one figure per seed):

* ``mean = sum(x) / N``; ``std = sqrt(sum((x - mean)^2) / (N - 1))`` (Bessel's correction:
  the N - 1 makes the variance estimate unbiased; NumPy's default ddof=0 does not);
* Student-t interval: ``mean +- t_{0.975, N-1} * std / sqrt(N)`` (Student 1908). With few
  seeds the t quantile is much larger than the normal 1.96: 2.776 at N = 5, 2.262 at N = 10;
* percentile bootstrap: resample x with replacement B times, take each resample's mean,
  and report the 2.5th and 97.5th percentiles of those means (Efron & Tibshirani 1993,
  "An Introduction to the Bootstrap", ch. 13).

References: ``scipy.stats.t.interval`` and ``scipy.stats.bootstrap(method="percentile")``
compute the same intervals (the task checks against them).
"""

from __future__ import annotations

import dataclasses
import math

import torch


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    """Summary of N per-seed figures (units: those of the figures)."""

    n: int
    mean: float
    std: float
    """sample standard deviation (ddof = 1)"""
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float


def mean_std(x: torch.Tensor) -> tuple[float, float]:
    """(mean, sample std with ddof = 1) of a 1-D tensor.

    Raises:
        ValueError: fewer than 2 values (a spread needs two runs) or a non-1-D input.
    """
    if x.dim() != 1 or x.numel() < 2:
        raise ValueError(f"need a 1-D tensor of at least 2 runs, got shape {tuple(x.shape)}")
    x = x.double()
    m = x.sum() / x.numel()
    return float(m), float(((x - m) ** 2).sum().div(x.numel() - 1).sqrt())


def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom (scipy.stats.t.ppf)."""
    from scipy.stats import t

    return float(t.ppf(q, df))


def t_interval(x: torch.Tensor, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t confidence interval for the mean of ``x`` (N,)."""
    m, s = mean_std(x)
    half = t_quantile(0.5 + level / 2, x.numel() - 1) * s / math.sqrt(x.numel())
    return m - half, m + half


def bootstrap_interval(
    x: torch.Tensor, level: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean: B resamples drawn with replacement at once.

    The B x N index matrix is drawn in one call and the means taken in one reduction, so
    the cost is one (B, N) gather, not B Python iterations.
    """
    mean_std(x)  # validates shape
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, x.numel(), (n_resamples, x.numel()), generator=g)  # (B, N)
    means = x.double()[idx].mean(dim=1)  # (B,)
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(lo), float(hi)


def summarize(x: torch.Tensor, *, level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> SeedSummary:
    """All of the above for one set of per-seed figures."""
    m, s = mean_std(x)
    tl, th = t_interval(x, level)
    bl, bh = bootstrap_interval(x, level, n_resamples, seed)
    return SeedSummary(x.numel(), m, s, tl, th, bl, bh)
