"""m2.optimizers: own optimizers follow torch.optim step for step; its mutants: test_mutants.py."""

import sys

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m2.optimizers")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {t["name"] for t in rec.tables} == {"trajectory errors (float64)", "trajectory errors (float32)"}
    rows = rec.tables[0]["rows"]
    assert {r["setting"] for r in rows} >= {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"}
    assert {r["version"] for r in rows} == {"own_loop", "own_foreach"}


def test_planted_scaffolding_alone_is_right():
    # guards the Adam mutants: the planted class with the right formula equals torch.optim
    planted_adam = sys.modules[Task.__module__].PlantedAdam
    torch.manual_seed(0)
    p1 = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    p2 = torch.nn.Parameter(p1.detach().clone())
    a, b = (
        planted_adam([p1], lr=1e-2, eps=1e-6, weight_decay=1e-3),
        torch.optim.Adam([p2], lr=1e-2, eps=1e-6, weight_decay=1e-3, foreach=False),
    )
    for _ in range(20):
        p1.grad = p1.detach() ** 2 - 1
        p2.grad = p2.detach() ** 2 - 1
        a.step()
        b.step()
    assert torch.equal(p1, p2)
