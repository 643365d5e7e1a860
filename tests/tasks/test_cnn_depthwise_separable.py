"""4.07 depthwise_separable: the check passes (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("cnn.depthwise_separable")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["flop_ratio_standard_over_separable"] > 1
    assert rec.tables and rec.tables[0]["rows"][0]["params_separable"] < rec.tables[0]["rows"][0]["params_standard"]
