"""7.07 super_resolution: PixelShuffle shapes, PSNR with border crop, the trained net beats bicubic."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from models.image_gan import SRNet

Task = REGISTRY.get("gans.super_resolution")


def test_check_passes():
    rec = run_check(Task)
    assert {"PixelShuffle x4 shapes", "PSNR with border crop (hand value)", "beats bicubic"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_untrained_residual_net_is_bicubic():
    lr = torch.rand(2, 1, 8, 8)
    want = torch.nn.functional.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
    torch.testing.assert_close(SRNet()(lr), want)
