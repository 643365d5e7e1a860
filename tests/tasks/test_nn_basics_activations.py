"""3.08 activations: all three train on the same seed and budget (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.activations")


def test_check_passes_with_curves_for_all_three():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    for name in ("train loss", "test accuracy"):
        assert {c["series"] for c in rec.curves if c["name"] == name} == {"relu", "tanh", "sigmoid"}
