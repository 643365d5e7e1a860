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
