"""4.01 cifar10_cnn: the check passes (its mutants: test_mutants.py); the shared loader
normalises with training statistics."""

import torch

from harness import REGISTRY
from harness.data import synthetic_cifar
from harness.data.cifar_images import to_tensors
from harness.testing import run_check

Task = REGISTRY.get("cnn.cifar10_cnn")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["final_accuracy"] >= 0.5
    assert {c["name"] for c in rec.curves} >= {"train loss", "test accuracy"}
    assert any("SYNTHETIC" in n for n in rec.notes)


def test_normalisation_uses_training_statistics():
    tr, te = synthetic_cifar(64, seed=0), synthetic_cifar(32, seed=1)
    (x, _), (xt, _) = to_tensors(tr, te, "cpu", torch.float32)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    assert not torch.allclose(xt.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)  # test set not re-fitted
