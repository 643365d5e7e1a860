"""2.09 weight_decay: L2 and decoupled decay by hand equal torch (mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("autograd.weight_decay")


def test_check_passes():
    rec = run_check(Task)
    for dt in ("float32", "float64"):
        for name in (
            "L2 by hand (loop) + SGD = torch SGD(weight_decay)",
            "L2 by hand (foreach) + SGD = torch SGD(weight_decay)",
            "L2 in the loss + SGD = torch SGD(weight_decay)",
            "decoupled by hand (loop) + Adam = torch AdamW",
            "decoupled by hand (foreach) + Adam = torch AdamW",
        ):
            assert rec.checks[f"{name} ({dt})"]["passed"]
        assert rec.metrics[f"adam_l2_vs_adamw_max_abs_gap_{dt}"] > 1e-3
    assert all(c["passed"] for c in rec.checks.values())
