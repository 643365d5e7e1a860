"""7.07 Super-resolution x4: PixelShuffle, PSNR with a border crop, beating bicubic.

Compared: a small SRResNet-style network (``models.image_gan.SRNet``: low-resolution convolutions,
then ``nn.PixelShuffle(4)``, Shi et al. 2016) predicting the residual over bicubic upsampling,
against bicubic, on x4 bicubic-downscaled grey crops of sklearn's china.jpg (training) and
flower.jpg (held out), by PSNR after cropping ``scale`` pixels at each border, as SR papers do.

Check: PixelShuffle(4) shapes; PSNR against a hand value and torchmetrics'; the briefly trained
network beats bicubic on held-out crops. Bench: inference images/s; held-out PSNRs, loss, pictures.

Lesson: the untrained residual network *is* bicubic (its last conv starts at zero), so training
can only add detail; without the global skip it must first learn to copy the image and falls
below bicubic in the same budget. Published (Set5, x4, PSNR on Y; Ledig et al. 2017, Table 2):
bicubic 28.43, SRResNet 32.05, SRGAN 29.40 dB: the GAN's perceptual loss buys sharper texture for
2.6 dB, because PSNR rewards the blurry mean (not comparable with our grey crops and a network
100x smaller). The bench runs that second stage and records the PSNR change (a claim); with a
pixel content loss, not SRGAN's VGG features, expect a smaller drop.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness import gan_train as gan
from harness.claims import metric
from harness.data.textures import sr_split
from harness.mutants import Mutant
from models.image_gan import PatchGAN, SRNet


@dataclasses.dataclass(frozen=True)
class SRConfig:
    """Network width, crop size and training length."""

    width: int = 32
    """channels of the low-resolution convolutions"""
    side: int = 32
    """high-resolution crop side (the input is side / 4)"""
    batch: int = 32
    """crops per step"""
    steps: int = 150
    """Adam steps"""
    gan_steps: int = 60
    """bench only: SRGAN's second stage, adversarial fine-tune steps after the L1 training"""
    adv_weight: float = 1e-3
    """weight of the adversarial term next to the content loss (Ledig et al. 2017, eq. 3: 10^-3)"""


@task("gans.super_resolution", seed="7.07", title="GAN for super-resolution")
class SuperResolution(TrainingRun):
    __doc__ = __doc__
    variants = ("inference",)
    sizes = {"tiny": SRConfig(), "cpu": SRConfig(steps=400), "gpu": SRConfig(width=64, side=96, batch=16, steps=5000)}
    metrics = {
        "psnr_net_db": "held-out PSNR of the network, dB",
        "psnr_bicubic_db": "held-out PSNR of bicubic, dB",
        "psnr_gain_db": "network minus bicubic, dB",
        "gan_psnr_change_db": "held-out PSNR after the adversarial fine-tune minus before, dB",
    }
    claims = (
        metric("psnr_gain_db", ">", 0.0, text="the trained network beats bicubic PSNR on held-out crops"),
        metric("gan_psnr_change_db", "<=", 0.0, text="the adversarial fine-tune costs PSNR (SRGAN: -2.65 dB on Set5)"),
    )
    global_skip, border = True, 4  # the net predicts the residual over bicubic; PSNR crops 4 (= scale) pixels
    mutants = (
        Mutant("no_global_skip", "the network predicts the whole image", {"global_skip": False}, match="bicubic"),
        Mutant("no_border_crop", "PSNR over the whole image", {"border": 0}, match="PSNR"),
    )

    def bicubic(self, lr):
        """The baseline: (N, 1, s, s) -> (N, 1, 4s, 4s), bicubic, clamped to the image range."""
        return F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)

    def psnr(self, pred, target):
        """dB on [-1, 1] images (data range 2) after cropping ``border`` pixels per side."""
        if b := self.border:
            pred, target = pred[..., b:-b, b:-b], target[..., b:-b, b:-b]
        return 10 * math.log10(4.0 / float((pred - target).square().mean()))

    def _pairs(self, ctx, cfg):
        """``sr_split`` on the device: (low, high) china.jpg crops to train on, (low, high) flower.jpg held out."""
        return [[t.to(ctx.device) for t in pair] for pair in sr_split(cfg.side, ctx.rng_seed)]

    def _train(self, ctx, cfg):
        """Adam on L1; returns the net, the held-out (low, high) pair, the net's output and the losses."""
        torch.manual_seed(ctx.rng_seed)
        net = SRNet(1, cfg.width, 4, self.global_skip).to(ctx.device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        (lr, hr), test = self._pairs(ctx, cfg)
        batches = gan.minibatches(ctx.generator(1), cfg.steps, cfg.batch, lr, hr)
        losses = [float(gan.descend(opt, F.l1_loss(net(lo), hi))) for lo, hi in batches]
        with torch.no_grad():
            return net, test, net(test[0]).clamp(-1, 1), losses

    def _gan_finetune(self, ctx, cfg, net):
        """SRGAN's second stage: L1 + ``adv_weight`` x non-saturating GAN loss against a PatchGAN; held-out output."""
        torch.manual_seed(ctx.rng_seed + 1)
        disc = PatchGAN(1, 16).to(ctx.device)
        opt_d, opt_g = gan.adam(1e-4, disc), gan.adam(1e-4, net)
        (lr, hr), (test_lr, _) = self._pairs(ctx, cfg)
        for lo, hi in gan.minibatches(ctx.generator(2), cfg.gan_steps, cfg.batch, lr, hr):
            fake = net(lo)
            gan.descend(opt_d, gan.bce_d_loss(disc(hi), disc(fake.detach())))  # on (B, 1, S', S') patch logits
            gan.descend(opt_g, F.l1_loss(fake, hi) + cfg.adv_weight * gan.bce_g_loss(disc(fake)))
        with torch.no_grad():
            return net(test_lr).clamp(-1, 1)

    def check(self, ctx):
        cfg = ctx.configs[0]
        net = SRNet(1, cfg.width, 4, self.global_skip)
        shapes = net.body(torch.zeros(2, 1, 8, 8)).shape, net(torch.zeros(2, 1, 8, 8)).shape
        ctx.expect(shapes == ((2, 16, 8, 8), (2, 1, 32, 32)), f"shapes {shapes}", name="PixelShuffle x4 shapes")
        target, pred = torch.zeros(1, 1, 16, 16), torch.ones(1, 1, 16, 16)
        pred[..., 4:-4, 4:-4] = 0.1  # error 1 in the 4-pixel border, 0.1 inside: cropped MSE 0.01
        want = torch.tensor(10 * math.log10(4 / 0.01))
        ctx.assert_close(torch.tensor(self.psnr(pred, target)), want, name="PSNR with border crop (hand value)")
        if gan.have(ctx, "torchmetrics", "PSNR = torchmetrics on the cropped images"):
            from torchmetrics.functional import peak_signal_noise_ratio

            x, y = (torch.rand(2, 1, 16, 16, generator=ctx.generator(i)) * 2 - 1 for i in (1, 2))
            ref = peak_signal_noise_ratio(x[..., 4:-4, 4:-4], y[..., 4:-4, 4:-4], data_range=2.0).double()
            got = torch.tensor(self.psnr(x, y), dtype=torch.float64)
            ctx.assert_close(got, ref, rtol=1e-5, atol=1e-5, name="PSNR = torchmetrics on the cropped images")
        _, (test_lr, test), out, _ = self._train(ctx, cfg)
        p_net, p_bic = self.psnr(out, test), self.psnr(self.bicubic(test_lr), test)
        ctx.expect(p_net > p_bic, f"network {p_net:.2f} dB <= bicubic {p_bic:.2f} dB (held out)", name="beats bicubic")

    def bench(self, ctx):
        cfg = ctx.configs[0]
        net, (test_lr, test), out, losses = self._train(ctx, cfg)
        bic = self.bicubic(test_lr)
        p_net, p_bic = self.psnr(out, test), self.psnr(bic, test)
        if cfg.gan_steps:
            ctx.metric("gan_psnr_change_db", self.psnr(self._gan_finetune(ctx, cfg, net), test) - p_net)
        gan.steps_curve(ctx, "training L1", losses, y_label="mean |SR - HR|")
        ctx.metric("psnr_net_db", p_net)
        ctx.metric("psnr_bicubic_db", p_bic)
        ctx.metric("psnr_gain_db", p_net - p_bic)
        gan.grid(ctx, "x4: bicubic, network, ground truth", [bic, out, test], "held-out flower.jpg crops", nrow=6)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        net = SRNet(1, config.width, 4, self.global_skip).to(ctx.device)
        lr = torch.rand(config.batch, 1, config.side // 4, config.side // 4, generator=ctx.generator(2)).to(ctx.device)
        return Prepared(fn=torch.no_grad()(lambda: net(lr)), items=config.batch, item_unit="images")
