"""7.04 wgan_gp: closed-form penalty, create_graph, per-sample eps, critic layers (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("gans.wgan_gp")


def test_check_passes():
    rec = run_check(Task)
    assert {"penalty = lambda (||w|| - 1)^2", "d penalty / dw", "interpolation per sample"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_penalty_vanishes_for_a_unit_norm_linear_critic():
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1))
    with torch.no_grad():
        lin[1].weight /= lin[1].weight.norm()
    pen, _ = Task().penalty(lin, torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8))
    assert float(pen) < 1e-8
