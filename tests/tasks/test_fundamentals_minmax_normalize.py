"""1.02 minmax_normalize: the check passes; the NumPy reference on a hand value (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("fundamentals.minmax_normalize")


def test_check_passes():
    rec = run_check(Task)
    assert {"naive", "fused", "constant input: no NaN", "stats keepdim shape"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_numpy_reference_itself_is_checked_against_a_hand_value():
    x = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
    out = Task().reference(x, -1)
    assert torch.equal(out, torch.tensor([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]))
