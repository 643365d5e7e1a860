"""4.02 conv2d_manual: the check passes (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("cnn.conv2d_manual")


def test_check_passes():
    rec = run_check(Task)
    names = {c["name"] for c in rec.checks.values()}
    assert {"F.conv2d", "direct", "unfold", "im2col", "im2col grad (x, w, b)", "im2col gradcheck"} <= names
    assert all(c["passed"] for c in rec.checks.values())
