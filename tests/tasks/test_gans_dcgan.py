"""7.02 dcgan: Radford et al.'s layer rules, N(0, 0.02) init, Adam(2e-4, 0.5) (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from models.gan import DCDiscriminator, DCGenerator, GanConfig

Task = REGISTRY.get("gans.dcgan")


def test_check_passes():
    rec = run_check(Task)
    assert {"no pooling", "init N(0, 0.02)", "Adam(2e-4, beta1 0.5)", "a training step runs"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_shapes_at_every_supported_size():
    for size in (8, 16, 32, 64):
        cfg = GanConfig(size=size, z_dim=10, width=4, classes=3)
        x = DCGenerator(cfg)(torch.randn(2, 10), torch.tensor([0, 2]))
        assert x.shape == (2, 1, size, size)
        assert DCDiscriminator(cfg)(x, torch.tensor([0, 2])).shape == (2,)


def test_cifar10_batches_under_data_dir_train_the_bench_in_colour(tmp_path, monkeypatch):
    """CIFAR-10's python batches under --data-dir become the bench's training images: 3 channels in
    [-1, 1], and the generator built for them outputs colour."""
    from harness.data.cifar import write_cifar10
    from harness.data.cifar_or_digits import cifar_or_digits

    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=g)
    write_cifar10(tmp_path, (imgs, torch.arange(20) % 10), (imgs[:4], torch.arange(4)))
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    x, desc = cifar_or_digits(8)
    assert x.shape == (8, 3, 32, 32) and "CIFAR-10" in desc
    assert torch.equal(x, imgs[:8].float() / 127.5 - 1)
    G, *_ = Task()._build(Task.sizes["tiny"], "cpu", 0, channels=3)
    assert G(torch.randn(2, Task.sizes["tiny"].z_dim)).shape == (2, 3, 32, 32)
