"""advanced.amp: autocast's op lists and the GradScaler's order and dynamics (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("advanced.amp")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    for name in ("op dtypes (cpu)", "inf step skipped", "unscale before clipping (cpu)", "scale: backoff and growth"):
        assert name in rec.checks
