"""m4.allocator_fragmentation: schedules and stats arithmetic; its mutants: test_mutants.py."""

import pytest
import torch

from harness import REGISTRY
from harness.allocator_stats import make_schedule, summarize
from harness.testing import run_check

Task = REGISTRY.get("m4.allocator_fragmentation")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert "stats arithmetic (fabricated dict)" in rec.checks
    if not torch.cuda.is_available():
        assert rec.skipped_parts[0]["reason"] == "needs cuda"


def test_schedule_and_summary_errors():
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("zigzag", [1, 2])
    with pytest.raises(ValueError, match="ints >= 1"):
        make_schedule("random", [0, 2])
    with pytest.raises(ValueError, match="empty trace"):
        summarize([])
    assert make_schedule("increasing", [3, 1], repeats=2) == [1, 1, 3, 3]
