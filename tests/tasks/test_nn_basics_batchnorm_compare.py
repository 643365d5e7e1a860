"""3.04 batchnorm_compare: own BatchNorm equals torch's (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.batchnorm_compare")


def test_check_passes_and_records_curves_per_variant():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves if c["name"] == "train loss"} == {"no_bn", "own_bn", "torch_bn"}
