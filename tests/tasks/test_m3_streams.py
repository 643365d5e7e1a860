"""m3.streams: chunked (streamed) results equal the unchunked computation; its mutants: test_mutants.py."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m3.streams")


def test_check_passes():
    rec = run_check(Task)
    assert set(rec.checks) == {"serial == unchunked", "streamed == unchunked"}
    assert all(c["passed"] for c in rec.checks.values())
    if not torch.cuda.is_available():
        assert rec.skipped_parts and rec.skipped_parts[0]["reason"] == "needs cuda"
