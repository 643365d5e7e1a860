"""2.02 linreg_backprop: the check passes and records its recovery error (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("autograd.linreg_backprop")


def test_check_passes():
    rec = run_check(Task)
    compared = {"hand gradients = autograd", "manual trajectory = autograd trajectory", "converged to least squares"}
    assert set(rec.checks) == {f"{n} ({dt})" for n in compared for dt in ("float32", "float64")} | {
        "loss falls",
        "recovers the known weights",
        "bad shapes rejected",
    }
    assert all(c["passed"] for c in rec.checks.values())
    assert 0 < rec.metrics["recovery_max_abs_err_float32"] < 5e-3
    assert any("synthetic" in n for n in rec.notes)
