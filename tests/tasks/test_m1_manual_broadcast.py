"""m1.manual_broadcast: engines equal torch on all enumerated pairs; its mutants: test_mutants.py."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m1.manual_broadcast")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["enumerated_pairs"] == 14641
    assert {
        "rule equals torch on all 14,641 pairs",
        "strided_gather: values on the enumerated pairs",
        "expand_views: values on the enumerated pairs",
    } <= set(rec.checks)
