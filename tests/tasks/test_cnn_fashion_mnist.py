"""4.06 fashion_mnist: the check passes (mutants: test_mutants.py); prepare gives a step."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("cnn.fashion_mnist")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["final_accuracy"] >= 0.98
    assert {c["name"] for c in rec.curves} >= {"train loss", "test accuracy"}
    assert any("standing in for Fashion-MNIST" in n for n in rec.notes)


def test_prepare_gives_a_training_step():
    from harness.context import Context

    ctx = Context(Task, mode="bench", size="tiny")
    p = Task().prepare(ctx, "train_step", ctx.configs[0])
    loss = p.fn()
    assert loss.dim() == 0 and torch.isfinite(loss) and p.items == 64
