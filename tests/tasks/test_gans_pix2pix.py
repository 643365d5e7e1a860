"""7.06 pix2pix: U-Net skip shapes, the conditional 70x70 PatchGAN, GAN + 100 L1."""

import pytest
import torch

from harness import REGISTRY
from harness.data.textures import photo_patches
from harness.testing import run_check
from models.image_gan import UNet

Task = REGISTRY.get("gans.pix2pix")


def test_check_passes():
    rec = run_check(Task)
    assert {"U-Net skip shapes", "D sees the pair", "70x70 PatchGAN", "G loss = GAN + 100 L1"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_unet_at_the_published_depth_keeps_256():
    u = UNet(1, 3, width=2, depth=8)
    assert u(torch.zeros(2, 1, 256, 256)).shape == (2, 3, 256, 256)
    assert len(u.last_skips) == 7


def test_photo_patches_reject_a_side_larger_than_the_photo():
    with pytest.raises(ValueError, match="side"):
        photo_patches("chelsea", 1, 400)
