"""2.06 softmax_function: the check passes (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("autograd.softmax_function")


def test_check_passes():
    rec = run_check(Task)
    assert {
        "torch_softmax",
        "function",
        "composed",
        "finite for logits +-1e4",
        "equals torch.softmax at +-1e4",
        "gradcheck + gradgradcheck float64",
        "dim out of range rejected",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
