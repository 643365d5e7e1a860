"""m2.manual_amp: the policy puts every op in autocast's dtype; its mutants: test_mutants.py."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m2.manual_amp")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert "model trace: same ops in the same dtypes (cpu)" in rec.checks
    assert any("fake tensors" in name for name in rec.checks)  # the CUDA float16 policy, without a GPU
