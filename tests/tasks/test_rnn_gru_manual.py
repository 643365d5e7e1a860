"""5.07 gru_manual: the hand-written GRU equals nn.GRU (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check
from models.recurrent import GRU

Task = REGISTRY.get("rnn.gru_manual")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["manual: weight gradients (float64)"]["n"] > 50
    assert Task.manual_cls is GRU and Task.id == "rnn.gru_manual" and Task.seed == "5.07"
