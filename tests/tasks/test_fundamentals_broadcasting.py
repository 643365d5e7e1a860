"""1.03 broadcasting: the check passes, catches planted bugs; the rule agrees with torch (hypothesis)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.tensor.iterator import broadcast_shape, expand_to

Task = REGISTRY.get("fundamentals.broadcasting")


def test_check_passes():
    rec = run_check(Task)
    assert {
        "implicit",
        "expand",
        "materialised",
        "rule agrees with torch.broadcast_shapes",
        "rejects (3,) vs (4,)",
        "expand_to is a view",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_rule_accepting_3_vs_4_is_caught():
    def lenient(*shapes):  # takes the larger size instead of rejecting a mismatch
        nd = max(len(s) for s in shapes)
        padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
        return tuple(max(col) for col in zip(*padded))

    class Lenient(Task):
        shape_rule = staticmethod(lenient)

    expect_check_fails(Lenient, match="broadcast")


def test_rule_aligning_on_the_left_is_caught():
    def left_aligned(*shapes):
        nd = max(len(s) for s in shapes)
        padded = [tuple(s) + (1,) * (nd - len(s)) for s in shapes]
        return broadcast_shape(*padded)

    class LeftAligned(Task):
        shape_rule = staticmethod(left_aligned)

    expect_check_fails(LeftAligned)


def test_swapped_operands_are_caught():
    expect_check_fails(planted(Task, "materialised", lambda self, a, b: lambda: b - a), match="materialised")


def test_materialised_from_wrong_tiling_is_caught():
    # tiles b along the wrong axis: right shape, wrong values wherever b varies
    def wrong_tile(self, a, b):
        shape = torch.broadcast_shapes(a.shape, b.shape)
        return lambda: a.expand(shape) - b.expand(shape).flip(0).contiguous()

    expect_check_fails(planted(Task, "materialised", wrong_tile), match="materialised")


shapes = st.lists(st.lists(st.integers(0, 4), max_size=5).map(tuple), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(shapes)
def test_rule_matches_torch_broadcast_shapes(shape_list):
    try:
        want = tuple(torch.broadcast_shapes(*shape_list))
    except RuntimeError:
        with pytest.raises(ValueError, match="not broadcastable"):
            broadcast_shape(*shape_list)
        return
    assert broadcast_shape(*shape_list) == want
    x = torch.randn(shape_list[0])
    v = expand_to(x, want)
    assert torch.equal(v, x.expand(want)) and (v.numel() == 0 or v.data_ptr() == x.data_ptr())
