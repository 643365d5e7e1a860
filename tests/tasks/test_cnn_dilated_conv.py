"""4.09 dilated_conv: the check passes (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("cnn.dilated_conv")


def test_check_passes():
    rec = run_check(Task)
    assert {"F.conv2d", "direct", "im2col", "zero_inserted", "zero_inserted grad (x, w, b)"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
