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


def test_gan_finetune_moves_the_generator_and_keeps_shapes():
    """SRGAN's second stage runs from the trained network: the generator's weights change, the
    held-out output keeps its (N, 1, side, side) shape and range."""
    import dataclasses

    from harness.context import Context, TaskRecord

    task = Task()
    ctx = Context(task, mode="bench", device="cpu", dtype=torch.float32, size="tiny", rng_seed=0,
                  record=TaskRecord(id=Task.id))  # fmt: skip
    cfg = dataclasses.replace(Task.sizes["tiny"], gan_steps=3, batch=4)
    net = SRNet(1, cfg.width, 4, True)
    before = [p.detach().clone() for p in net.parameters()]
    out = task._gan_finetune(ctx, cfg, net)
    assert out.shape == (256, 1, cfg.side, cfg.side) and float(out.abs().max()) <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
