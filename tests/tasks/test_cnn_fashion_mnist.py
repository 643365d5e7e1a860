"""4.06 fashion_mnist: the check passes; a loader that ignores the IDX files, one that
scales pixels wrongly, and a model that does not learn are caught."""

import dataclasses

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("cnn.fashion_mnist")
module = __import__(Task.__module__, fromlist=["load_data"])


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["final_accuracy"] >= 0.98
    assert {c["name"] for c in rec.curves} >= {"train loss", "test accuracy"}
    assert any("standing in for Fashion-MNIST" in n for n in rec.notes)


def test_loader_that_ignores_idx_files_is_caught():
    class Wrong(Task):
        loader = staticmethod(lambda data_dir=None, device="cpu": module.load_data(None, device))

    expect_check_fails(Wrong, match="IDX files")


def test_wrong_pixel_scale_is_caught():
    def scaled(data_dir=None, device="cpu"):
        d = module.load_data(data_dir, device)
        return dataclasses.replace(d, train=(d.train[0] * 255 / 256, d.train[1]))

    class Wrong(Task):
        loader = staticmethod(scaled)

    expect_check_fails(Wrong, match="pixels")


def test_model_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.0, epochs=1)}

    expect_check_fails(Wrong, match="accuracy")


def test_prepare_gives_a_training_step():
    from harness.context import Context

    ctx = Context(Task, mode="bench", size="tiny")
    p = Task().prepare(ctx, "train_step", ctx.configs[0])
    loss = p.fn()
    assert loss.dim() == 0 and torch.isfinite(loss) and p.items == 64
