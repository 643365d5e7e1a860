"""2.10 grad_accumulation: accumulated gradients equal the full-batch ones (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("autograd.grad_accumulation")


def test_check_passes():
    rec = run_check(Task)
    assert set(rec.checks) == {
        "accumulated (even micro-batches)",
        "accumulated (uneven micro-batches)",
        "parameters after 5 SGD steps",
        "BatchNorm breaks the equivalence",
    }
    assert all(c["passed"] for c in rec.checks.values())
