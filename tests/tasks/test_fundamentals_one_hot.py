"""1.08 one_hot: the check passes; error messages name value and range (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.tensor.one_hot import one_hot_scatter

Task = REGISTRY.get("fundamentals.one_hot")


def test_check_passes():
    rec = run_check(Task)
    assert {"scatter", "compare", "eye_index", "negative label rejected", "label >= num_classes rejected"} <= set(
        rec.checks
    )
    assert all(c["passed"] for c in rec.checks.values())


def test_error_messages_name_value_and_range():
    import pytest

    with pytest.raises(ValueError, match=r"label 5 out of range for num_classes=4 \(valid 0..3\)"):
        one_hot_scatter(torch.tensor([1, 5]), 4)
