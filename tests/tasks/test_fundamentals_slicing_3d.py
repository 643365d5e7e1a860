"""1.09 slicing_3d: the check passes and catches planted bugs (NumPy's rules, views, offsets)."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("fundamentals.slicing_3d")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert {"slicing", "gather", "slice_contiguous", "basic slices are views, the rest copies"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_negative_step_as_plain_flip_is_caught():
    # reverses the whole dim and then steps: right only when the slice starts at the end
    def flip_then_step(self, x, index):
        def run():
            parts = []
            y = x
            for i in index:
                if isinstance(i, slice) and (i.step or 1) < 0:
                    y = y.flip(len(parts))
                    i = slice(None, None, -i.step)
                if isinstance(i, slice) or isinstance(i, int):
                    parts.append(i)
                else:
                    return mod.index_slice(x, index)
            return y[tuple(parts)]

        return run

    expect_check_fails(planted(Task, "slicing", flip_then_step), match="slicing")


def test_int_with_array_applied_in_order_is_caught():
    # select the int first, then index the array: (n1, k) where NumPy gives (k, n1)
    def in_order(self, x, index):
        def run():
            ints = [d for d, i in enumerate(index) if isinstance(i, int)]
            arrays = [d for d, i in enumerate(index) if isinstance(i, torch.Tensor)]
            if ints and arrays and abs(ints[0] - arrays[0]) > 1:
                y = x.select(ints[0], index[ints[0]])
                return y.index_select(arrays[0] - (ints[0] < arrays[0]), index[arrays[0]] % x.shape[arrays[0]])
            return mod.index_slice(x, index)

        return run

    expect_check_fails(planted(Task, "gather", in_order), match="gather")


def test_gather_ignoring_storage_offset_is_caught():
    def no_offset(self, x, index):
        return lambda: mod.index_gather(x[1:], index)  # reads from a shifted base

    expect_check_fails(planted(Task, "gather", no_offset), match="gather")


def test_slice_that_copies_is_caught():
    expect_check_fails(
        planted(Task, "slicing", lambda self, x, index: lambda: mod.index_slice(x, index).clone()), match="view"
    )


def test_negative_step_view_of_numpy_is_documented_as_copy():
    x = torch.arange(10.0)
    out = mod.index_slice(x, (slice(None, None, -2),))
    assert out.tolist() == [9.0, 7.0, 5.0, 3.0, 1.0]
    assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    with pytest.raises(ValueError):
        x[::-1]  # torch itself has no negative steps
