"""6.06 decoder_generation: the check passes (its mutants, a causal mask off by one, KV caches that drop the
last key or forget their offset and a model that does not learn: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("transformers.decoder_generation")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["held_out_loss_nats"] < rec.metrics["unigram_entropy_nats"]
    assert {c["name"] for c in rec.curves} >= {"train loss"}
