"""1.07 reshape_flatten: the check passes and catches planted bugs (copies, illegal views, wrong rule)."""

import pytest
import torch

import kernels.tensor.views as kf
from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("fundamentals.reshape_flatten")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert {
        "own",
        "copy",
        "view where legal, copy where not",
        "view rule agrees with Tensor.view",
        "flatten(start, end) equals torch",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_flatten_that_always_copies_is_caught():
    def copying(self, x, new_shape, flatten):
        if new_shape is not None:
            return lambda: x.reshape(new_shape)
        return lambda: torch.flatten(x.contiguous().clone(), *flatten)

    expect_check_fails(planted(Task, "own", copying), match="should be a view")


def test_copy_that_is_a_view_is_caught():
    # x.contiguous() returns x itself when x is contiguous: no copy at all
    def contiguous_only(self, x, new_shape, flatten):
        c = x.contiguous()
        return lambda: c.view(new_shape) if new_shape is not None else torch.flatten(c, *flatten)

    expect_check_fails(planted(Task, "copy", contiguous_only), match="where it should copy")


def test_illegal_view_is_caught():
    # pretends every tensor is contiguous: a "view" of a permuted tensor reads the wrong elements
    def lying_view(self, x, new_shape, flatten):
        shape = new_shape if new_shape is not None else torch.flatten(torch.empty(x.shape), *flatten).shape
        shape = kf.infer_shape(shape, x.numel())
        return lambda: x.as_strided(shape, torch.empty(shape).stride(), x.storage_offset())

    expect_check_fails(planted(Task, "own", lying_view), match="own")


def test_view_rule_only_for_contiguous_is_caught(monkeypatch):
    # too strict: refuses views of sliced/permuted tensors that torch can view
    def strict(shape, stride, new_shape):
        return kf.view_strides(shape, stride, new_shape) if stride == torch.empty(shape).stride() else None

    monkeypatch.setattr(mod, "view_strides", strict)
    expect_check_fails(Task, match="view")


def test_own_view_error_is_clear():
    x = torch.randn(3, 4).t()
    with pytest.raises(ValueError, match="use reshape"):
        mod.own_view(x, (12,))
    assert mod.own_reshape(x, (12,)).untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
