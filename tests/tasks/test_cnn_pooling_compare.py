"""4.08 pooling_compare: the check passes (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("cnn.pooling_compare")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves if c["name"] == "test accuracy"} == set(Task.variants)
    rows = {r["variant"]: r for r in rec.tables[0]["rows"]}
    assert rows["no_pool"]["params"] > rows["maxpool"]["params"]
