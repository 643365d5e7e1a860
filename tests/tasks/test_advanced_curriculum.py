"""advanced.curriculum: exact pacing, easiest-first order, both arms learn (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.curriculum.pacing import exposed, linear_pacing, paced_batches

Task = REGISTRY.get("advanced.curriculum")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"pacing exposes ceil(g(t) N)", "order is easiest first", "both arms learn on the same budget"} <= set(
        rec.checks
    )


def test_pacing_edges():
    assert exposed(0.3, 10) == 3  # 0.3 * 10 is 3.0000000000000004 in floats
    assert exposed(1e-6, 10) == 1
    assert linear_pacing(10**6, 100, 0.2, 0.8) == 1.0
    with pytest.raises(ValueError, match="start"):
        linear_pacing(0, 10, 0.0, 0.5)


def test_random_order_draws_from_everything():
    order = torch.arange(50)
    b = paced_batches(order, 3, 2000, lambda t: 1.0, torch.Generator().manual_seed(0))
    assert set(b[0].tolist()) == set(range(50))
