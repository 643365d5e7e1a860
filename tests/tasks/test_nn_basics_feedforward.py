"""3.01 feedforward: shapes, registered parameters, learning (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.feedforward")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["n_params"] == 4 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3
    assert any(c["name"] == "train loss" for c in rec.curves)
