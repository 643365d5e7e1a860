"""6.03 news_headlines: the check passes (its mutants, loaders that ignore the files, read a TSV as CSV, keep
each file's label numbering or hide a short row, and a model that does not learn: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("transformers.news_headlines")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["final_accuracy"] >= 0.6
    assert any("SYNTHETIC" in n for n in rec.notes)
