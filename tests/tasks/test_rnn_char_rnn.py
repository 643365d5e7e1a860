"""5.01 char_rnn: loss falls below unigram entropy, sampling seeded and in-vocabulary (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("rnn.char_rnn")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    m = rec.metrics
    assert m["check_final_loss"] < m["check_unigram_entropy"] < m["check_initial_loss"]
