"""4.03 resnet_skip: the check passes (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("cnn.resnet_skip")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves if c["name"] == "train loss"} == {"plain", "resnet"}
    assert rec.metrics["first_conv_grad_norm_ratio_resnet_over_plain"] > 0
