"""2.03 huber_loss: the check passes and catches a Huber loss with the quadratic branch missing 0.5."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("autograd.huber_loss")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert {
        "torch_huber",
        "own",
        "smooth_l1",
        "gradcheck + gradgradcheck float64",
        "mismatched shapes rejected",
        "(N, 1) vs (N,) not broadcast",
        "delta <= 0 rejected",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def _reduce(loss, reduction):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def test_quadratic_branch_without_half_is_caught():
    def no_half(self, inp, tgt, g, reduction, delta):
        def loss(a, b):
            d = a - b
            return _reduce(torch.where(d.abs() < delta, d * d, delta * (d.abs() - 0.5 * delta)), reduction)

        return lambda: mod._fwd_bwd(loss, inp, tgt, g)

    expect_check_fails(planted(Task, "own", no_half), match="own")


def test_boundary_in_quadratic_branch_is_harmless_but_wrong_linear_branch_is_caught():
    # |d| <= delta instead of < delta: both branches agree at the boundary, so this must pass...
    def le(self, inp, tgt, g, reduction, delta):
        def loss(a, b):
            d = a - b
            return _reduce(torch.where(d.abs() <= delta, 0.5 * d * d, delta * (d.abs() - 0.5 * delta)), reduction)

        return lambda: mod._fwd_bwd(loss, inp, tgt, g)

    run_check(planted(Task, "own", le))

    # ...while a linear branch missing its -0.5 delta offset is caught
    def no_offset(self, inp, tgt, g, reduction, delta):
        def loss(a, b):
            d = a - b
            return _reduce(torch.where(d.abs() < delta, 0.5 * d * d, delta * d.abs()), reduction)

        return lambda: mod._fwd_bwd(loss, inp, tgt, g)

    expect_check_fails(planted(Task, "own", no_offset), match="own")


def test_mean_as_sum_is_caught():
    def mean_is_sum(self, inp, tgt, g, reduction, delta):
        r = "sum" if reduction == "mean" else reduction
        return lambda: mod._fwd_bwd(lambda a, b: mod.huber_loss(a, b, reduction=r, delta=delta), inp, tgt, g)

    expect_check_fails(planted(Task, "own", mean_is_sum), match="own")
