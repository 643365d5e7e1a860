"""3.07 tabular_mlp: train-only standardisation, beats the majority baseline; mutants: test_mutants.py."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.tabular_mlp")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["final_accuracy"] >= rec.metrics["majority_baseline_accuracy"] + 0.25
