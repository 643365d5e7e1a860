"""m6.prefetch_compare: same batches, errors propagate, break stops the thread (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m6.prefetch_compare")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    for name in ("same batches with and without prefetching", "producer error propagates", "break stops the thread"):
        assert name in rec.checks
