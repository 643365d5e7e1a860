"""7.06 Pix2Pix: U-Net generator, 70x70 PatchGAN, GAN + 100 L1.

Compared: Isola, Zhu, Zhou & Efros, "Image-to-image translation with conditional adversarial
networks" (CVPR 2017): a U-Net generator (encoder-decoder with skips between mirrored layers), a
conditional PatchGAN discriminator that sees the (input, output) pair and classifies each 70x70
patch, and the generator loss ``L_cGAN + lambda L1`` with lambda = 100 (Eq. 4, Sec. 4). Paired
data here: grey -> colour on 32x32 crops of real photos shipped with scikit-image (astronaut
and coffee for training, chelsea held out; real photos, not CIFAR).

Check: every U-Net skip joins tensors of the same spatial size (one join per level) and the
output has the input's size with the target's channels; the discriminator takes input and
output channels together; a 256x256 pair gives 30x30 patch logits and the receptive field
computes to 70 (r += (k - 1) x jump over the five 4x4 convs); the generator loss equals
BCE(D(x, G(x)), 1) + 100 mean |G(x) - y| on fixed tensors.

Bench: one D+G step (steps/s); a short run records the held-out L1 before and after, and a
picture (grey input, G's colouring, the real photo) on held-out crops.

Lesson: the L1 term gets the low frequencies right (an L1-only model is blurry but correct on
average), the PatchGAN only has to judge local texture, so it is small and works at any image
size; skips carry the input's detail straight to the output. Isola et al. report for
Cityscapes labels -> photo FCN-scores per-pixel accuracy 0.66 (L1 + cGAN) against 0.42 (L1
alone) (Table 1); not comparable with colourisation of photo crops.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.mutants import Mutant
from models.image_gan import PatchGAN, UNet, receptive_field


@dataclasses.dataclass(frozen=True)
class Pix2PixConfig:
    """Widths, crop size and training length."""

    width: int = 8
    """U-Net and PatchGAN width (published: 64)"""
    side: int = 32
    """crop side in pixels (published: 256)"""
    depth: int = 4
    """U-Net levels (published: 8 at 256x256)"""
    batch: int = 8
    """pairs per step (published: 1)"""
    steps: int = 60
    """training steps of the bench's run"""


@task("gans.pix2pix", seed="7.06", title="Pix2Pix")
class Pix2Pix(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": Pix2PixConfig(),
        "cpu": Pix2PixConfig(steps=150),
        "gpu": Pix2PixConfig(width=64, side=256, depth=8, batch=1, steps=1000),
    }
    metrics = {
        "l1_before": "held-out mean |G(x) - y| at init",
        "l1_after": "held-out mean |G(x) - y| after the run",
        "l1_ratio": "l1_after / l1_before",
    }
    claims = (metric("l1_ratio", "<=", 0.8, text="held-out L1 falls by >= 20 % over the short run"),)
    l1_weight = 100.0
    unet_skips = True
    d_sees_input = True
    mutants = (
        Mutant("no_skips", "encoder-decoder without skips", {"unet_skips": False}, match="skip"),
        Mutant("l1_weight_10", "lambda = 10", {"l1_weight": 10.0}, match="L1"),
        Mutant("unconditional_d", "D sees only the output", {"d_sees_input": False}, match="pair"),
    )

    def g_loss(self, d_logits, fake, target):
        """BCE(D, real) + lambda * mean |fake - target|: the generator's objective."""
        return (
            F.binary_cross_entropy_with_logits(d_logits, torch.ones_like(d_logits))
            + self.l1_weight * (fake - target).abs().mean()
        )

    def _nets(self, cfg, device):
        G = UNet(1, 3, cfg.width, cfg.depth, skips=self.unet_skips).to(device)
        D = PatchGAN(4 if self.d_sees_input else 3, cfg.width).to(device)
        return G, D

    def _pair(self, x, y):
        return torch.cat([x, y], dim=1) if self.d_sees_input else y  # (N, 1 + 3, S, S)

    def check(self, ctx):
        cfg = ctx.configs[0]
        torch.manual_seed(ctx.rng_seed)
        G, D = self._nets(cfg, ctx.device)
        x = torch.randn(2, 1, cfg.side, cfg.side, generator=ctx.generator()).to(ctx.device)
        out = G(x)
        ctx.expect(
            out.shape == (2, 3, cfg.side, cfg.side), f"U-Net output {tuple(out.shape)}", name="U-Net output shape"
        )
        joins = G.last_skips
        ctx.expect(
            len(joins) == cfg.depth - 1,
            f"{len(joins)} skip joins for {cfg.depth} levels: a skip is missing",
            name="U-Net skip shapes",
        )
        for up, skip in joins:
            ctx.expect(up[2:] == skip[2:], f"skip of {skip} joins {up}", name="U-Net skip shapes")
        first = next(m for m in D.modules() if isinstance(m, torch.nn.Conv2d))
        ctx.expect(
            first.in_channels == 4,
            f"D takes {first.in_channels} channels: it must see the (input, output) pair",
            name="D sees the pair",
        )
        big = PatchGAN(4 if self.d_sees_input else 3, 64)
        side = big(torch.zeros(1, first.in_channels, 256, 256)).shape[-1]
        ctx.expect(
            side == 30 and receptive_field(big) == 70,
            f"PatchGAN {side}x{side}, field {receptive_field(big)}",
            name="70x70 PatchGAN",
        )
        d = torch.tensor([0.3, -1.2])
        fake, target = torch.full((2, 3, 2, 2), 0.5), torch.zeros(2, 3, 2, 2)
        want = -torch.log(torch.sigmoid(d)).mean() + 100 * 0.5
        ctx.assert_close(self.g_loss(d, fake, target), want, name="G loss = GAN + 100 L1")

    def _data(self, ctx, cfg):
        from harness.data.textures import photo_patches

        train = torch.cat(
            [photo_patches(p, 256, cfg.side, seed=ctx.rng_seed + i) for i, p in enumerate(("astronaut", "coffee"))]
        )
        test = photo_patches("chelsea", 64, cfg.side, seed=ctx.rng_seed)
        return train.to(ctx.device), test.to(ctx.device)

    def _setup(self, ctx, cfg):
        torch.manual_seed(ctx.rng_seed)
        G, D = self._nets(cfg, ctx.device)
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

        def step(y):
            x = y.mean(1, keepdim=True)  # grey input (N, 1, S, S)
            fake = G(x)
            opt_d.zero_grad(set_to_none=True)
            real_l, fake_l = D(self._pair(x, y)), D(self._pair(x, fake.detach()))
            d = 0.5 * (
                F.binary_cross_entropy_with_logits(real_l, torch.ones_like(real_l))
                + F.binary_cross_entropy_with_logits(fake_l, torch.zeros_like(fake_l))
            )
            d.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            g = self.g_loss(D(self._pair(x, fake)), fake, y)
            g.backward()
            opt_g.step()
            return g.detach()

        return G, step

    def bench(self, ctx):
        if importlib.util.find_spec("skimage") is None:
            ctx.skip_part("Pix2Pix training on photo crops", "needs scikit-image (pip install scikit-image)")
            return
        cfg = ctx.configs[0]
        train, test = self._data(ctx, cfg)
        G, step = self._setup(ctx, cfg)
        grey = test.mean(1, keepdim=True)
        held_out = lambda: float((G.eval()(grey) - test).abs().mean())  # noqa: E731 - called twice
        with torch.no_grad():
            before = held_out()
        G.train()
        g, losses = ctx.generator(5), []
        for _ in range(cfg.steps):
            losses.append(
                float(step(train[torch.randint(0, train.shape[0], (cfg.batch,), generator=g).to(ctx.device)]))
            )
        ctx.curve("generator loss", list(range(1, cfg.steps + 1)), losses, y_label="BCE + 100 L1")
        with torch.no_grad():
            after = held_out()
            pics = torch.cat([grey[:6].expand(-1, 3, -1, -1), G(grey[:6]), test[:6]])
        ctx.metric("l1_before", before)
        ctx.metric("l1_after", after)
        ctx.metric("l1_ratio", after / before)
        ctx.image(
            "grey -> colour (held-out chelsea crops)",
            pics,
            nrow=6,
            vmin=-1,
            vmax=1,
            caption="rows: grey input, G(x), real photo",
        )
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        _, step = self._setup(ctx, config)
        y = torch.rand(config.batch, 3, config.side, config.side, generator=ctx.generator(6)).to(ctx.device) * 2 - 1
        return Prepared(fn=lambda: step(y), items=1, item_unit="steps")
