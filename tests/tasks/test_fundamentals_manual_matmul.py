"""1.01 manual_matmul: the check passes for the real implementations and catches planted bugs."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("fundamentals.manual_matmul")


def test_check_passes():
    rec = run_check(Task)
    assert {c["name"] for c in rec.checks.values()} == {"torch_matmul", "loop", "broadcast_sum", "blocked"}
    assert all(c["passed"] for c in rec.checks.values())


def test_transposed_operand_is_caught():
    # multiplies by B's transpose where shapes allow it: wrong values, or wrong shape
    wrong = planted(
        Task,
        "broadcast_sum",
        lambda self, a, b: lambda: (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-3)[..., : a.shape[-2], :],
    )
    expect_check_fails(wrong, match="broadcast_sum")


def test_blocked_missing_last_tile_is_caught():
    def blocked_drops_tail(self, a, b):
        def run():
            out = torch.matmul(a, b).clone()
            out[..., -1, -1] = 0.0  # the tail tile never written
            return out

        return run

    expect_check_fails(planted(Task, "blocked", blocked_drops_tail), match="blocked")


def test_all_zero_output_is_caught_by_constant_guard():
    expect_check_fails(
        planted(Task, "loop", lambda self, a, b: lambda: torch.zeros(*a.shape[:-1], b.shape[-1])), match="constant"
    )
