"""m1.custom_activation: Swish Function passes gradcheck/gradgradcheck; its mutants: test_mutants.py."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m1.custom_activation")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {
        "custom_function",
        "torch_silu",
        "gradcheck + gradgradcheck float64",
        "second derivative equals autograd's (float64)",
        "Function saves less for backward",
    } <= set(rec.checks)
