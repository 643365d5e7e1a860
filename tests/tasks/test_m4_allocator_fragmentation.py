"""m4.allocator_fragmentation: schedules and stats arithmetic; planted bugs are caught."""

import sys

import pytest
import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m4.allocator_fragmentation")
mod = sys.modules[Task.__module__]


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert "stats arithmetic (fabricated dict)" in rec.checks
    if not torch.cuda.is_available():
        assert rec.skipped_parts[0]["reason"] == "needs cuda"


def test_decreasing_schedule_that_is_not_sorted_is_caught():
    class Wrong(Task):
        def schedule(self, kind, config, seed):
            if kind == "decreasing":
                return list(reversed(config.batches))  # reversed input order, not sorted
            return super().schedule(kind, config, seed)

    expect_check_fails(Wrong, match="decreasing schedule is not sorted")


def test_random_schedule_ignoring_its_seed_is_caught():
    class Wrong(Task):
        def schedule(self, kind, config, seed):
            return super().schedule(kind, config, 0)

    expect_check_fails(Wrong, match="ignores its seed")


def test_schedule_dropping_a_batch_is_caught():
    class Wrong(Task):
        def schedule(self, kind, config, seed):
            return super().schedule(kind, config, seed)[:-1]

    expect_check_fails(Wrong, match="not a permutation")


def test_fragmentation_from_active_bytes_is_caught():
    class Wrong(Task):
        def fragmentation(self, stats):
            f = mod.fragmentation(stats)
            if "active_bytes.all.current" in stats:  # active includes blocks freed but still in use by a stream
                f["free_in_reserved_mb"] = (
                    stats["reserved_bytes.all.current"] - stats["active_bytes.all.current"]
                ) / 1e6
            return f

    expect_check_fails(Wrong, match="fragmentation(free_in_reserved_mb)")


def test_ratio_over_allocated_is_caught():
    class Wrong(Task):
        def fragmentation(self, stats):
            f = mod.fragmentation(stats)
            f["frag_ratio"] = f["free_in_reserved_mb"] / f["allocated_mb"] if f["allocated_mb"] else 0.0
            return f

    expect_check_fails(Wrong, match="frag_ratio")


def test_schedule_and_summary_errors():
    with pytest.raises(ValueError, match="unknown schedule"):
        mod.make_schedule("zigzag", [1, 2])
    with pytest.raises(ValueError, match="ints >= 1"):
        mod.make_schedule("random", [0, 2])
    with pytest.raises(ValueError, match="empty trace"):
        mod.summarize([])
    assert mod.make_schedule("increasing", [3, 1], repeats=2) == [1, 1, 3, 3]
