"""m2.transformer_clipping: clipped stays finite where unclipped diverges; its mutants: test_mutants.py."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m2.transformer_clipping")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {(c["name"], c["series"]) for c in rec.curves} >= {("train loss", "unclipped"), ("train loss", "clipped")}
    assert rec.metrics["unclipped.diverged_at_step"] <= Task.sizes["tiny"].steps


def test_check_is_robust_to_the_seed():
    assert all(c["passed"] for c in run_check(Task, rng_seed=1).checks.values())
