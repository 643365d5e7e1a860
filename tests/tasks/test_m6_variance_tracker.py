"""m6 variance_tracker: the hand summary equals SciPy's, seeds differ (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.stats.intervals import bootstrap_interval, mean_std, t_interval

Task = REGISTRY.get("m6.variance_tracker")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"t-interval 95 %", "bootstrap interval (percentile)", "seeds differ"} <= set(rec.checks)


def test_worked_example_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    m, s = mean_std(x)
    assert (m, round(s, 12)) == (3.0, round(2.5**0.5, 12))
    lo, hi = t_interval(x)  # t_{0.975, 4} = 2.7764451...
    assert abs((hi - lo) / 2 - 2.7764451051977987 * 2.5**0.5 / 5**0.5) < 1e-9
    blo, bhi = bootstrap_interval(x, n_resamples=2000, seed=1)
    assert 1.0 <= blo < 3.0 < bhi <= 5.0


def test_one_run_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        mean_std(torch.tensor([0.9]))
