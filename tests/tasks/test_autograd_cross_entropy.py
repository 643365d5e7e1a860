"""2.07 cross_entropy: the check passes; the mutants' loss is right without its bug (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import planted, run_check

Task = REGISTRY.get("autograd.cross_entropy")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert {
        "torch_ce",
        "own",
        "gradcheck + gradgradcheck float64",
        "all-ignored mean is NaN",
        "mismatched shapes rejected",
        "mismatched probability target rejected",
        "class index out of range rejected",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_wrong_versions_without_their_bug_pass():
    """The mutants' hand-written loss is right apart from the bug each one switches on."""
    run_check(planted(Task, "own", mod._wrong_ce()))
