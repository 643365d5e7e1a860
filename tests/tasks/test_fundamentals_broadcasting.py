"""1.03 broadcasting: the check passes; the rule agrees with torch (hypothesis). Mutants: test_mutants.py."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import REGISTRY
from harness.testing import run_check
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
