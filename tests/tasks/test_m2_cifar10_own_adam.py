"""m2.cifar10_own_adam: own Adam's loss curve equals torch's on a CNN; the CIFAR reader path is checked
(its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m2.cifar10_own_adam")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {
        "CIFAR train pixels read back",
        "own_adam: loss curve = torch Adam's",
        "own_adam_foreach: loss curve = torch Adam's",
    } <= set(rec.checks)
    assert any("SYNTHETIC" in n for n in rec.notes)
