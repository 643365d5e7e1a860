"""1.01 manual_matmul: the check passes for the real implementations (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("fundamentals.manual_matmul")


def test_check_passes():
    rec = run_check(Task)
    assert {c["name"] for c in rec.checks.values()} == {"torch_matmul", "loop", "broadcast_sum", "blocked"}
    assert all(c["passed"] for c in rec.checks.values())
