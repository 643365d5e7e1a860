"""6.09 mlm: the check passes (its mutants, a loss over all positions, a 90/5/5 rule, a 20 % selection, random
replacements from the whole vocabulary or its lower half, and selected padding: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check
from kernels.text.mlm_wrong import wrong_mask

Task = REGISTRY.get("transformers.mlm")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert abs(rec.metrics["selected_fraction"] - 0.15) < 0.01
    assert abs(rec.metrics["mask_fraction_of_selected"] - 0.8) < 0.02


def test_the_mutants_masking_helper_is_right_with_correct_settings():
    # the failures of the mutants come from their one wrong parameter, not from the helper
    right = type("Right", (Task,), {"mask_fn": staticmethod(wrong_mask()), "_train": lambda self, *a: (0.0, 1.0)})
    run_check(right)
