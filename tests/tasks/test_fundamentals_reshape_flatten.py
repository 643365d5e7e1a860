"""1.07 reshape_flatten: the check passes; own_view's error is clear (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.tensor.reshape import own_reshape, own_view

Task = REGISTRY.get("fundamentals.reshape_flatten")


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


def test_own_view_error_is_clear():
    x = torch.randn(3, 4).t()
    with pytest.raises(ValueError, match="use reshape"):
        own_view(x, (12,))
    assert own_reshape(x, (12,)).untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
