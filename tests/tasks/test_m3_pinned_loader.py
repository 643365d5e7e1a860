"""m3.pinned_loader: batches arrive intact and in order; its mutants: test_mutants.py."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m3.pinned_loader")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["pinned_prefetch: batch checksums"]["n"] == 14  # 7 batches x 2 configs
    if not torch.cuda.is_available():
        assert rec.skipped_parts[0]["reason"] == "needs cuda"
