"""6.07 mha_manual: the check passes (its mutants, a missing 1/sqrt(d) scale, heads split along the wrong axis,
an inverted key-padding polarity and per-head weights summed instead of averaged: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("transformers.mha_manual")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["manual (float64)"]["max_abs_err"] < 1e-12
