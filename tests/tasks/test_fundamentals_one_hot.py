"""1.08 one_hot: the check passes and catches planted bugs (silent -1, off-range, wrong dtype)."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("fundamentals.one_hot")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert {"scatter", "compare", "eye_index", "negative label rejected", "label >= num_classes rejected"} <= set(
        rec.checks
    )
    assert all(c["passed"] for c in rec.checks.values())


def test_compare_silently_accepting_minus_one_is_caught():
    # no validation: -1 matches no class and becomes an all-zero row
    def unchecked(self, labels, num_classes):
        c = num_classes if num_classes > 0 else int(labels.max()) + 1 if labels.numel() else 0
        return lambda: (labels.unsqueeze(-1) == torch.arange(c)).long()

    expect_check_fails(planted(Task, "compare", unchecked), match="negative label rejected")


def test_unclear_error_is_caught():
    # scatter_ itself rejects -1, but with a RuntimeError from deep inside, not a clear ValueError
    def raw_scatter(self, labels, num_classes):
        c = num_classes if num_classes > 0 else int(labels.max()) + 1 if labels.numel() else 1
        return lambda: torch.zeros(*labels.shape, max(c, 1), dtype=torch.int64).scatter_(-1, labels.unsqueeze(-1), 1)

    expect_check_fails(planted(Task, "scatter", raw_scatter), match="expected")


def test_float_output_is_caught():
    expect_check_fails(
        planted(Task, "eye_index", lambda self, labels, c: lambda: torch.nn.functional.one_hot(labels, c).float()),
        match="eye_index",
    )


def test_off_by_one_class_is_caught():
    def shifted(self, labels, c):
        return lambda: torch.nn.functional.one_hot(labels, c).roll(1, -1)

    expect_check_fails(planted(Task, "scatter", shifted), match="scatter")


def test_error_messages_name_value_and_range():
    import pytest

    with pytest.raises(ValueError, match=r"label 5 out of range for num_classes=4 \(valid 0..3\)"):
        mod.one_hot_scatter(torch.tensor([1, 5]), 4)
