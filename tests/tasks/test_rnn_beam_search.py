"""5.10 beam_search: beam 1 = greedy, exact on unpruned lattices, length penalty (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("rnn.beam_search")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["unpruned beam = brute-force best sequence"]["n"] == 27
    assert rec.checks["beam width 1 = greedy: tokens"]["n"] == 18
