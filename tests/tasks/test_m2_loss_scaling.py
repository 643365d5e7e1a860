"""m2.loss_scaling: the hand scaler behaves exactly like GradScaler; its mutants: test_mutants.py."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.amp.scaler import DynamicLossScaler

Task = REGISTRY.get("m2.loss_scaling")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["scale equals GradScaler's"]["n"] == 48
    assert rec.metrics["fp16_zero_grad_fraction.unscaled"] > rec.metrics["fp16_zero_grad_fraction.scaled_2^16"]


def test_unscale_twice_raises_like_grad_scaler():
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    opt = torch.optim.SGD([p], lr=0.1)
    s = DynamicLossScaler()
    s.unscale_(opt)
    try:
        s.unscale_(opt)
    except RuntimeError as e:
        assert "already been called" in str(e)
    else:
        raise AssertionError("second unscale_ accepted")
