"""7.07 Super-resolution x4: PixelShuffle, PSNR with a border crop, beating bicubic.

Compared: a small SRResNet-style network (``models.image_gan.SRNet``: convolutions at low
resolution, then ``nn.PixelShuffle(4)``, Shi et al. 2016) that predicts the residual over bicubic
upsampling, against bicubic itself, on x4 bicubic-downscaled grey crops of real photos (sklearn's
china.jpg for training, flower.jpg held out; real photos, not CIFAR). PSNR is measured on
[-1, 1] images (data range 2) after cropping ``scale`` pixels at each border, as SR papers do.

Check: the network maps (N, 1, 8, 8) to (N, 1, 32, 32) through 16 channels and PixelShuffle(4);
PSNR equals a hand value on a worked example whose error sits in the border (cropped) and inside
(kept), and equals torchmetrics' ``peak_signal_noise_ratio`` on the cropped images when
torchmetrics is installed; after a short training the network beats bicubic PSNR on held-out
crops.

Bench: images/s of the network at inference; a training run records held-out PSNR of the
network and of bicubic, the training loss, and a picture (bicubic, network, ground truth).

Lesson: the untrained residual network *is* bicubic (its last conv starts at zero), so training
can only add detail; without the global skip the network must first learn to copy the image and
falls below bicubic in the same budget. Published figures (Set5, x4, PSNR on Y): bicubic 28.43,
SRResNet 32.05, SRGAN 29.40 (Ledig et al. 2017, Table 2): the GAN's perceptual loss buys sharper
texture at a loss of 2.6 dB, because PSNR rewards the blurry mean. Not comparable with ours:
other images, grey [-1, 1] crops, a network 100x smaller. The bench runs that second stage (content
+ 10^-3 x adversarial, a PatchGAN critic) from the trained network and records the PSNR it costs or
gains here (a claim); with a pixel content loss instead of SRGAN's VGG features the pull away from
the blurry mean is weaker, so expect a smaller drop than the paper's.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
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


@functools.lru_cache(maxsize=2)
def _grey(name: str) -> torch.Tensor:
    from sklearn.datasets import load_sample_image

    return torch.from_numpy(load_sample_image(name).astype("float32")).mean(-1) / 127.5 - 1  # (427, 640) in [-1, 1]


def _crops(name: str, n: int, side: int, seed: int) -> torch.Tensor:
    img, g = _grey(name), torch.Generator().manual_seed(seed)
    ys = torch.randint(0, img.shape[0] - side + 1, (n,), generator=g).tolist()
    xs = torch.randint(0, img.shape[1] - side + 1, (n,), generator=g).tolist()
    return torch.stack([img[y : y + side, x : x + side] for y, x in zip(ys, xs)])[:, None]  # (n, 1, side, side)


def _down(hr: torch.Tensor) -> torch.Tensor:
    return F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True, align_corners=False)


def _bicubic(lr: torch.Tensor) -> torch.Tensor:
    return F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)


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
    global_skip = True
    border = 4
    mutants = (
        Mutant("no_global_skip", "the network predicts the whole image", {"global_skip": False}, match="bicubic"),
        Mutant("no_border_crop", "PSNR over the whole image", {"border": 0}, match="PSNR"),
    )

    def psnr(self, pred, target):
        """dB on [-1, 1] images (data range 2) after cropping ``border`` pixels per side."""
        b = self.border
        if b:
            pred, target = pred[..., b:-b, b:-b], target[..., b:-b, b:-b]
        return 10 * math.log10(4.0 / float((pred - target).square().mean()))

    def _train(self, ctx, cfg):
        torch.manual_seed(ctx.rng_seed)
        net = SRNet(1, cfg.width, 4, self.global_skip).to(ctx.device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        hr = _crops("china.jpg", 1024, cfg.side, ctx.rng_seed).to(ctx.device)
        lr, g, losses = _down(hr), ctx.generator(1), []
        for _ in range(cfg.steps):
            i = torch.randint(0, hr.shape[0], (cfg.batch,), generator=g).to(ctx.device)
            opt.zero_grad(set_to_none=True)
            loss = F.l1_loss(net(lr[i]), hr[i])
            loss.backward()
            opt.step()
            losses.append(float(loss))
        test = _crops("flower.jpg", 256, cfg.side, ctx.rng_seed + 1).to(ctx.device)
        with torch.no_grad():
            out = net(_down(test)).clamp(-1, 1)
        return net, test, out, losses

    def _gan_finetune(self, ctx, cfg, net):
        """SRGAN's second stage: content (L1) + ``adv_weight`` x non-saturating adversarial loss against
        a PatchGAN, from the L1-trained network; returns the held-out output after it."""
        torch.manual_seed(ctx.rng_seed + 1)
        disc = PatchGAN(1, 16).to(ctx.device)
        opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.999))
        opt_g = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.5, 0.999))
        hr = _crops("china.jpg", 1024, cfg.side, ctx.rng_seed).to(ctx.device)
        lr, g, bce = _down(hr), ctx.generator(2), F.binary_cross_entropy_with_logits
        for _ in range(cfg.gan_steps):
            i = torch.randint(0, hr.shape[0], (cfg.batch,), generator=g).to(ctx.device)
            fake = net(lr[i])
            real_logits, fake_logits = disc(hr[i]), disc(fake.detach())  # (B, 1, S', S') patch logits each
            d_loss = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            adv = disc(fake)
            g_loss = F.l1_loss(fake, hr[i]) + cfg.adv_weight * bce(adv, torch.ones_like(adv))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
        test = _crops("flower.jpg", 256, cfg.side, ctx.rng_seed + 1).to(ctx.device)
        with torch.no_grad():
            return net(_down(test)).clamp(-1, 1)

    def check(self, ctx):
        cfg = ctx.configs[0]
        net = SRNet(1, cfg.width, 4, self.global_skip)
        shapes = net.body(torch.zeros(2, 1, 8, 8)).shape, net(torch.zeros(2, 1, 8, 8)).shape
        ctx.expect(shapes == ((2, 16, 8, 8), (2, 1, 32, 32)), f"shapes {shapes}", name="PixelShuffle x4 shapes")
        target = torch.zeros(1, 1, 16, 16)
        pred = torch.full_like(target, 1.0)
        pred[..., 4:-4, 4:-4] = 0.1  # error 1 in the 4-pixel border, 0.1 inside: cropped MSE 0.01
        ctx.assert_close(
            torch.tensor(self.psnr(pred, target)),
            torch.tensor(10 * math.log10(4 / 0.01)),
            name="PSNR with border crop (hand value)",
        )
        if importlib.util.find_spec("torchmetrics"):
            from torchmetrics.functional import peak_signal_noise_ratio

            x, y = (torch.rand(2, 1, 16, 16, generator=ctx.generator(i)) * 2 - 1 for i in (1, 2))
            ref = peak_signal_noise_ratio(x[..., 4:-4, 4:-4], y[..., 4:-4, 4:-4], data_range=2.0)
            ctx.assert_close(
                torch.tensor(self.psnr(x, y), dtype=torch.float64),
                ref.double(),
                rtol=1e-5,
                atol=1e-5,
                name="PSNR = torchmetrics on the cropped images",
            )
        _, test, out, _ = self._train(ctx, cfg)
        p_net, p_bic = self.psnr(out, test), self.psnr(_bicubic(_down(test)), test)
        ctx.expect(
            p_net > p_bic,
            f"network {p_net:.2f} dB does not beat bicubic {p_bic:.2f} dB on held-out crops",
            name="beats bicubic",
        )

    def bench(self, ctx):
        cfg = ctx.configs[0]
        net, test, out, losses = self._train(ctx, cfg)
        bic = _bicubic(_down(test))
        p_net, p_bic = self.psnr(out, test), self.psnr(bic, test)
        if cfg.gan_steps:
            ctx.metric("gan_psnr_change_db", self.psnr(self._gan_finetune(ctx, cfg, net), test) - p_net)
        ctx.curve("training L1", list(range(1, len(losses) + 1)), losses, y_label="mean |SR - HR|")
        ctx.metric("psnr_net_db", p_net)
        ctx.metric("psnr_bicubic_db", p_bic)
        ctx.metric("psnr_gain_db", p_net - p_bic)
        ctx.image(
            "x4: bicubic, network, ground truth",
            torch.cat([bic[:6], out[:6], test[:6]]),
            nrow=6,
            vmin=-1,
            vmax=1,
            caption="held-out flower.jpg crops",
        )
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        net = SRNet(1, config.width, 4, self.global_skip).to(ctx.device)
        lr = torch.rand(config.batch, 1, config.side // 4, config.side // 4, generator=ctx.generator(2)).to(ctx.device)
        return Prepared(fn=torch.no_grad()(lambda: net(lr)), items=config.batch, item_unit="images")
