"""m2.transformer_clipping: clipped stays finite where unclipped diverges; planted non-clipping is caught."""

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.optim.clipping import clip_grad_value_, total_grad_norm

Task = REGISTRY.get("m2.transformer_clipping")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {(c["name"], c["series"]) for c in rec.curves} >= {("train loss", "unclipped"), ("train loss", "clipped")}
    assert rec.metrics["unclipped.diverged_at_step"] <= Task.sizes["tiny"].steps


def test_check_is_robust_to_the_seed():
    assert all(c["passed"] for c in run_check(Task, rng_seed=1).checks.values())


def _no_clip(parameters, max_norm, *args, **kwargs):
    """Reports the norm but scales nothing: the 'clipped' run is not clipped."""
    return total_grad_norm([p.grad for p in parameters if p.grad is not None])


def _clip_by_value(parameters, max_norm, *args, **kwargs):
    """Clamps entries to [-max_norm, max_norm]: bounded, but not a global-norm clip."""
    params = [p for p in parameters if p.grad is not None]
    before = total_grad_norm([p.grad for p in params])
    clip_grad_value_(params, max_norm)
    return before


def _with(fn):
    class Wrong(Task):
        clip_fn = staticmethod(fn)

    return Wrong


def test_unclipped_clipped_run_is_caught():
    expect_check_fails(_with(_no_clip), match="clipped run")


def test_clip_by_value_is_caught():
    # entries clamped to +-1 still let the global norm grow with the parameter count: it explodes
    expect_check_fails(_with(_clip_by_value), match="clipped run")


def test_a_too_low_learning_rate_is_caught():
    import dataclasses

    class LowLR(Task):
        sizes = {**Task.sizes, "tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.1)}

    expect_check_fails(LowLR, match="did not diverge")
