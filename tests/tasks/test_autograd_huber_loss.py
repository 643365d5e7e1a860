"""2.03 huber_loss: the check passes; |d| <= delta at the boundary is harmless (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import planted, run_check
from kernels.autograd import wrong
from kernels.autograd.fwd_bwd import fwd_bwd

Task = REGISTRY.get("autograd.huber_loss")


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


def test_boundary_in_the_quadratic_branch_is_harmless():
    """|d| <= delta instead of < delta: both branches agree at the boundary, so the check passes."""

    def own(self, inp, tgt, g, reduction, delta):
        def loss(a, b):
            d = a - b
            q, lin = 0.5 * d * d, delta * (d.abs() - 0.5 * delta)
            out = torch.where(d.abs() <= delta, q, lin)
            return out if reduction == "none" else out.sum() if reduction == "sum" else out.mean()

        return lambda: fwd_bwd(loss, (inp, tgt), g)

    def right(self, inp, tgt, g, reduction, delta):
        """The mutants' by-hand Huber (kernels.autograd.wrong) with both branches right."""

        def loss(a, b):
            return wrong._huber_by_hand(
                a, b, reduction, delta, lambda d: 0.5 * d * d, lambda m: delta * (m - 0.5 * delta)
            )

        return lambda: fwd_bwd(loss, (inp, tgt), g)

    run_check(planted(Task, "own", own))
    run_check(planted(Task, "own", right))  # the mutants' helper with both branches right passes too
