"""1.05 manual_gradients: the check passes (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("fundamentals.manual_gradients")


def test_check_passes():
    rec = run_check(Task)
    assert {"autograd", "manual", "function", "manual float64", "gradcheck float64"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
