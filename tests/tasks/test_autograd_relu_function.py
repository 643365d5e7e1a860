"""2.01 relu_function: the check passes (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("autograd.relu_function")


def test_check_passes():
    rec = run_check(Task)
    assert {
        "torch_relu",
        "function",
        "no_autograd",
        "gradcheck + gradgradcheck float64",
        "forward on NaN / inf / signed zeros",
        "integer input rejected",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
