"""m1.strided_tensor: own views equal torch/NumPy views on random expressions; its mutants: test_mutants.py."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m1.strided_tensor")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["random_chains_with_negative_steps"] > 60
    assert {
        "random chains: layout vs torch",
        "random chains: layout vs NumPy",
        "out-of-range message equals torch's",
    } <= set(rec.checks)
