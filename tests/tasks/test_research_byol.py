"""research.byol: EMA + cosine tau by hand, symmetric loss, stop-gradient, no collapse (mutants: test_mutants.py)."""

import math

import pytest
import torch
from torch import nn

from harness import REGISTRY
from harness.testing import run_check
from kernels.ssl import byol

Task = REGISTRY.get("research.byol")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"EMA update = hand (weight)", "no collapse (spread of projections)"} <= set(rec.checks)


def test_cosine_tau_rises_from_base_to_one():
    taus = [byol.cosine_tau(k, 100, 0.996) for k in range(101)]
    assert taus[0] == 0.996 and taus[-1] == 1.0
    assert all(a <= b for a, b in zip(taus, taus[1:], strict=False))
    assert taus[50] == pytest.approx(0.998)  # halfway up the cosine
    with pytest.raises(ValueError, match="step"):
        byol.cosine_tau(101, 100)


def test_ema_endpoints():
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    byol.ema_update_(target, online, 1.0)  # tau 1: the target does not move
    for p, q in zip(target.parameters(), before, strict=True):
        torch.testing.assert_close(p, q)
    byol.ema_update_(target, online, 0.0)  # tau 0: the target becomes the online network
    for p, q in zip(target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="shapes"):
        byol.ema_update_(nn.Linear(2, 2), online, 0.5)


def test_spread_is_zero_for_a_constant_and_high_for_orthogonal_rows():
    assert byol.spread(torch.ones(16, 8)) == 0.0
    z = torch.cat([torch.eye(8), -torch.eye(8)])  # (16, 8): each dimension +-1 once, 0 elsewhere
    assert byol.spread(z) == pytest.approx(math.sqrt(8) * math.sqrt(2 / 15), rel=1e-5)


def test_regression_loss_stops_the_gradient_at_the_target():
    p = torch.randn(4, 5, requires_grad=True)
    z = torch.randn(4, 5, requires_grad=True)
    byol.regression_loss(p, z).backward()
    assert p.grad is not None and z.grad is None
