"""advanced.distillation: the loss by hand, the T^2 scale, distilled beats plain (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.distill.loss import kd_loss, kd_loss_by_hand

Task = REGISTRY.get("advanced.distillation")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"loss = hand computation", "T^2 keeps the soft gradient's scale"} <= set(rec.checks)


def test_identical_logits_leave_only_the_hard_term():
    z = torch.tensor([[2.0, -1.0, 0.5]])
    y = torch.tensor([0])
    ce = torch.nn.functional.cross_entropy(z, y)
    for loss in (kd_loss, kd_loss_by_hand):
        torch.testing.assert_close(loss(z, z, y, 3.0, 0.6), 0.4 * ce)
