"""6.04 positional_encoding: the check passes (its mutants, RoPE with the wrong pairing, a sinusoidal table with
the exponent i/d instead of 2i/d or with sin and cos swapped: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("transformers.positional_encoding")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"rope: score depends only on m - n", "rope = complex-number formula"} <= set(rec.checks)
