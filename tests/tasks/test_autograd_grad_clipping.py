"""2.05 grad_clipping: equals torch's clip_grad_norm_/clip_grad_value_; planted clipping bugs are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.optim import clipping

Task = REGISTRY.get("autograd.grad_clipping")


def test_check_passes():
    rec = run_check(Task)
    for dt in ("float32", "float64"):
        for v in ("loop", "foreach"):
            assert rec.checks[f"clip_grad_norm_ {v} ({dt})"]["passed"]
            assert rec.checks[f"clip_grad_value_ {v} ({dt})"]["passed"]
    assert {"inf norm of a zero-element gradient raises", "error_if_nonfinite raises"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def _hand_clip(
    params, max_norm, norm_type=2.0, error_if_nonfinite=False, *, eps=1e-6, per_tensor=False, always_two=False
):
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = clipping.total_grad_norm(grads, norm_type, error_if_nonfinite)
    two = clipping.total_grad_norm(grads, 2.0)
    with torch.no_grad():
        for g in grads:
            if per_tensor:  # the wrong norm: each tensor by its own
                norm = clipping.vector_norm(g, norm_type)
            elif always_two:  # the wrong norm: 2-norm whatever norm_type says
                norm = two
            else:
                norm = total
            g.mul_(torch.clamp(max_norm / (norm + eps), max=1.0))
    return total


def _with(**bug):
    class Wrong(Task):
        def clip_norm(self, variant, params, max_norm, norm_type=2.0, error_if_nonfinite=False):
            if variant == "loop":
                return _hand_clip(params, max_norm, norm_type, error_if_nonfinite, **bug)
            return super().clip_norm(variant, params, max_norm, norm_type, error_if_nonfinite)

    return Wrong


def test_hand_clip_without_bugs_passes():
    run_check(_with())


def test_missing_eps_is_caught_by_tiny_gradients():
    err = expect_check_fails(_with(eps=0.0), match="clip_grad_norm_ loop")
    assert "tiny gradients" in str(err)


def test_per_tensor_norm_is_caught():
    expect_check_fails(_with(per_tensor=True), match="clip_grad_norm_ loop")


def test_two_norm_for_every_norm_type_is_caught():
    err = expect_check_fails(_with(always_two=True), match="clip_grad_norm_ loop")
    assert "norm_type=1.0" in str(err)


def test_value_clipping_one_sided_is_caught():
    class OneSided(Task):
        def clip_value(self, variant, params, clip_value):
            if variant == "foreach":
                for p in params:
                    if p.grad is not None:
                        p.grad.clamp_(max=clip_value)
                return None
            return super().clip_value(variant, params, clip_value)

    expect_check_fails(OneSided, match="clip_grad_value_ foreach")
