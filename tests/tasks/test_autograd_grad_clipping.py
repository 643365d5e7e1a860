"""2.05 grad_clipping: equals torch's clip_grad_norm_/clip_grad_value_ (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("autograd.grad_clipping")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    for dt in ("float32", "float64"):
        for v in ("loop", "foreach"):
            assert rec.checks[f"clip_grad_norm_ {v} ({dt})"]["passed"]
            assert rec.checks[f"clip_grad_value_ {v} ({dt})"]["passed"]
    assert {"inf norm of a zero-element gradient raises", "error_if_nonfinite raises"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_hand_clip_without_bugs_passes():
    """The mutants' hand clipping is right apart from the bug each one switches on."""

    class Right(Task):
        clip_norm = mod._wrong_norm()

    run_check(Right)
