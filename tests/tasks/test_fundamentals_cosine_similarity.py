"""1.06 cosine_similarity: the check passes (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("fundamentals.cosine_similarity")


def test_check_passes():
    rec = run_check(Task)
    assert {"torch_cosine", "naive", "fused", "no NaN", "eps rule: zero vs zero"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
