"""1.02 minmax_normalize: the check passes and catches planted bugs."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("fundamentals.minmax_normalize")


def test_check_passes():
    rec = run_check(Task)
    assert {"naive", "fused", "constant input: no NaN", "stats keepdim shape"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def _unguarded(self, x, dim):
    # the textbook formula without the span == 0 guard: 0/0 = NaN on constant slices
    dims = tuple(range(x.ndim)) if dim is None else dim
    return lambda: (x - x.amin(dims, keepdim=True)) / (x.amax(dims, keepdim=True) - x.amin(dims, keepdim=True))


def test_division_by_zero_on_constant_input_is_caught():
    expect_check_fails(planted(Task, "fused", _unguarded), match="NaN")


def test_wrong_dim_is_caught():
    def global_minmax(self, x, dim):  # ignores dim: scales by the whole tensor's min and max
        return lambda: (x - x.min()) / (x.max() - x.min())

    expect_check_fails(planted(Task, "fused", global_minmax), match="fused")


def test_keepdim_ignored_is_caught():
    class KeepdimIgnored(Task):
        @staticmethod
        def stats(x, dim=None, keepdim=False):
            return Task.stats(x, dim, keepdim=True)  # always keeps the reduced dims

    expect_check_fails(KeepdimIgnored, match="keepdim")


def test_numpy_reference_itself_is_checked_against_a_hand_value():
    x = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
    out = Task().reference(x, -1)
    assert torch.equal(out, torch.tensor([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]))
