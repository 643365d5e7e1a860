"""6.01 sdpa: the check passes (its mutants, a missing 1/sqrt(d) scale, a causal mask off by one, a blocked
softmax that forgets to rescale and a "blocked" version that builds the whole score matrix: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("transformers.sdpa")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    names = {n.replace(" (float32)", "").replace(" (float64)", "") for n in rec.checks}  # per-dtype suffixes
    assert {
        "naive",
        "blocked",
        "naive: dQ, dK, dV",
        "blocked: dQ, dK, dV",
        "blocked peak memory is linear",
        "naive peak memory is quadratic",
    } <= names
    assert any("peak memory" in n for n in rec.notes)
