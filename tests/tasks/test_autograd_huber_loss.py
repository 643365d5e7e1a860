"""2.03 huber_loss: the check passes; |d| <= delta at the boundary is harmless (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import planted, run_check

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


def test_boundary_in_the_quadratic_branch_is_harmless():
    """|d| <= delta instead of < delta: both branches agree at the boundary, so the check passes."""
    right = mod._wrong(lambda d: 0.5 * d * d, lambda a, delta: delta * (a - 0.5 * delta))

    def own(self, inp, tgt, g, reduction, delta):
        def loss(a, b):
            d = a - b
            q, lin = 0.5 * d * d, delta * (d.abs() - 0.5 * delta)
            return mod._reduce(torch.where(d.abs() <= delta, q, lin), reduction)

        return lambda: mod._fwd_bwd(loss, inp, tgt, g)

    run_check(planted(Task, "own", own))
    run_check(planted(Task, "own", right))  # the mutants' helper with both branches right passes too
