"""7.03 cgan: the label steers G(z, y) and the digits classifier reads it (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("gans.cgan")


def test_check_passes():
    rec = run_check(Task)
    assert {"G(z, y) changes with the label", "classifier reads the label", "samples in range"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
