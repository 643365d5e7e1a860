"""1.09 slicing_3d: the check passes; a negative step copies (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.tensor.indexing import index_slice

Task = REGISTRY.get("fundamentals.slicing_3d")


def test_check_passes():
    rec = run_check(Task)
    assert {"slicing", "gather", "slice_contiguous", "basic slices are views, the rest copies"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_negative_step_view_of_numpy_is_documented_as_copy():
    x = torch.arange(10.0)
    out = index_slice(x, (slice(None, None, -2),))
    assert out.tolist() == [9.0, 7.0, 5.0, 3.0, 1.0]
    assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    with pytest.raises(ValueError):
        x[::-1]  # torch itself has no negative steps
