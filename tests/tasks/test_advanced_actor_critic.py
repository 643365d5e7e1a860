"""advanced.actor_critic: worked examples and learning above random on CartPole-v1 (mutants: test_mutants.py)."""

import pytest

from harness import REGISTRY, capabilities
from harness.testing import run_check

Task = REGISTRY.get("advanced.actor_critic")
pytestmark = pytest.mark.skipif(bool(capabilities.missing(["gymnasium"])), reason="needs gymnasium")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"n-step targets (n = 3)", "learns: above random across seeds"} <= set(rec.checks)
