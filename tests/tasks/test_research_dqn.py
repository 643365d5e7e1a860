"""research.dqn: worked examples and learning above random on CartPole-v1 (mutants: test_mutants.py)."""

import pytest

from harness import REGISTRY, capabilities
from harness.testing import run_check

Task = REGISTRY.get("research.dqn")
pytestmark = pytest.mark.skipif(bool(capabilities.missing(["gymnasium"])), reason="needs gymnasium")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"replay overwrite order (oldest first)", "learns: above random across seeds"} <= set(rec.checks)
