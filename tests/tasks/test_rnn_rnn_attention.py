"""5.05 rnn_attention: weights sum to 1, padding gets 0, attention beats none (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("rnn.rnn_attention")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    m = rec.metrics
    assert m["check_exact_match.bahdanau"] - m["check_exact_match.none"] >= Task.sizes["tiny"].min_margin
    assert rec.checks["padded positions get exactly 0"]["n"] == 9
