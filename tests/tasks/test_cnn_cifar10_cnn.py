"""4.01 cifar10_cnn: the check passes; a loader that ignores the batches, one that reads
the pixel rows in the wrong order, one that hides a truncated file, and a model that does
not learn are caught."""

import dataclasses

import torch

from harness import REGISTRY
from harness.data import synthetic_cifar
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("cnn.cifar10_cnn")
module = __import__(Task.__module__, fromlist=["load_images"])


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["final_accuracy"] >= 0.5
    assert {c["name"] for c in rec.curves} >= {"train loss", "test accuracy"}
    assert any("SYNTHETIC" in n for n in rec.notes)


def test_loader_that_ignores_the_batches_is_caught():
    class Wrong(Task):
        loader = staticmethod(lambda config, data_dir=None: module.load_images(config, None))

    expect_check_fails(Wrong, match="not used")


def test_hwc_pixel_order_is_caught():
    def hwc(config, data_dir=None):
        tr, te, d = module.load_images(config, data_dir)
        # rows read as (32, 32, 3) instead of (3, 32, 32): the classic CIFAR reshape bug
        fix = lambda s: dataclasses.replace(s, images=s.images.reshape(-1, 32, 32, 3).permute(0, 3, 1, 2))
        return fix(tr), fix(te), d

    class Wrong(Task):
        loader = staticmethod(hwc)

    expect_check_fails(Wrong, match="pixels")


def test_loader_that_hides_a_truncated_file_is_caught():
    def forgiving(config, data_dir=None):
        try:
            return module.load_images(config, data_dir)
        except ValueError:
            return module.load_images(config, None)

    class Wrong(Task):
        loader = staticmethod(forgiving)

    expect_check_fails(Wrong, match="truncated")


def test_model_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.0, epochs=1)}

    expect_check_fails(Wrong, match="test accuracy")


def test_normalisation_uses_training_statistics():
    tr, te = synthetic_cifar(64, seed=0), synthetic_cifar(32, seed=1)
    (x, _), (xt, _) = module.to_tensors(tr, te, "cpu", torch.float32)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    assert not torch.allclose(xt.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)  # test set not re-fitted
