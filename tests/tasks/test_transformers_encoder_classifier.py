"""6.02 encoder_classifier: the check passes (its mutants, pooling over the padding, attention that does not
mask padding keys and a model that does not learn: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("transformers.encoder_classifier")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["padding does not change the logits"]["n"] == 36
    assert rec.metrics["final_accuracy"] >= 0.7
    assert any("SYNTHETIC" in n for n in rec.notes)
