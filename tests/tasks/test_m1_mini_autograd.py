"""m1.mini_autograd: vjp/jvp/grad equal torch.func; its mutants: test_mutants.py."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m1.mini_autograd")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["composite_functions"] >= 10
    assert any(k.startswith("grad of a scalar function") for k in rec.checks)
