"""3.03 dropout_manual: the check passes for kernels.layers.dropout (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.dropout_manual")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert "bernoulli rule = F.dropout (same seed, CPU)" in rec.checks
    assert abs(rec.metrics["mean_out_over_x_p0.5"] - 1) < 0.01
