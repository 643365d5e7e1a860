"""m6.loader_utilization: whole batches in sampler order for 0/2 workers, sharded streams (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m6.loader_utilization")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["whole batches in sampler order"]["n"] == 4  # 0 workers, 2 workers, 2 epochs persistent
    assert "iterable: each sample exactly once" in rec.checks
