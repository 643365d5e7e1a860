"""7.06 Pix2Pix: U-Net generator, 70x70 PatchGAN, GAN + 100 L1.

Compared: Isola, Zhu, Zhou & Efros, "Image-to-image translation with conditional adversarial
networks" (CVPR 2017): a U-Net generator (skips between mirrored layers), a conditional
PatchGAN that judges each 70x70 patch of the (input, output) pair, and the generator loss
``L_cGAN + lambda L1``, lambda = 100 (Eq. 4, Sec. 4), on grey -> colour 32x32 crops of real
photos shipped with scikit-image (astronaut and coffee to train, chelsea held out).

Check: U-Net skips join equal sizes at every level and the output keeps the input's size;
D sees the pair; the published PatchGAN is 70x70 (30x30 logits on 256x256); the generator
loss equals BCE(D(x, G(x)), 1) + 100 mean |G(x) - y| on fixed tensors.

Bench: one D+G step (steps/s); a short run records held-out L1 before and after, and grey
input, G's colouring and the real photo of held-out crops.

Lesson: the L1 term gets the low frequencies right (an L1-only model is blurry but correct on
average), the PatchGAN only has to judge local texture, so it is small and works at any image
size; skips carry the input's detail straight to the output. Isola et al. report for
Cityscapes labels -> photo FCN-scores per-pixel accuracy 0.66 (L1 + cGAN) against 0.42 (L1
alone) (Table 1); not comparable with colourisation of photo crops.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, TrainingRun, task
from harness import gan_train as gan
from harness.claims import metric
from harness.data.textures import photo_patches
from harness.mutants import Mutant
from models.image_gan import PatchGAN, UNet


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
        return gan.bce_g_loss(d_logits) + self.l1_weight * (fake - target).abs().mean()

    def _pair(self, x, y):
        return torch.cat([x, y], dim=1) if self.d_sees_input else y  # (N, 1 + 3, S, S)

    def check(self, ctx):
        cfg = ctx.configs[0]
        G, D, _ = self._setup(ctx, cfg)
        x = torch.randn(2, 1, cfg.side, cfg.side, generator=ctx.generator()).to(ctx.device)
        out = tuple(G(x).shape)
        ctx.expect(out == (2, 3, cfg.side, cfg.side), f"U-Net output {out}", name="U-Net output shape")
        joins = G.last_skips  # (upsampled shape, skip shape) per join
        ctx.expect(
            len(joins) == cfg.depth - 1 and all(up[2:] == skip[2:] for up, skip in joins),
            f"skip joins {joins} for {cfg.depth} levels: want {cfg.depth - 1}, each of equal sizes",
            name="U-Net skip shapes",
        )
        c = next(m for m in D.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
        ctx.expect(c == 4, f"D takes {c} channels: it must see the (input, output) pair", name="D sees the pair")
        gan.expect_70x70_patchgan(ctx, c)
        d = torch.tensor([0.3, -1.2])
        fake, target = torch.full((2, 3, 2, 2), 0.5), torch.zeros(2, 3, 2, 2)
        want = -torch.log(torch.sigmoid(d)).mean() + 100 * 0.5
        ctx.assert_close(self.g_loss(d, fake, target), want, name="G loss = GAN + 100 L1")

    def _data(self, ctx, cfg):
        train = torch.cat(
            [photo_patches(p, 256, cfg.side, seed=ctx.rng_seed + i) for i, p in enumerate(("astronaut", "coffee"))]
        )
        test = photo_patches("chelsea", 64, cfg.side, seed=ctx.rng_seed)
        return train.to(ctx.device), test.to(ctx.device)

    def _setup(self, ctx, cfg):
        torch.manual_seed(ctx.rng_seed)
        G = UNet(1, 3, cfg.width, cfg.depth, skips=self.unet_skips).to(ctx.device)
        D = PatchGAN(4 if self.d_sees_input else 3, cfg.width).to(ctx.device)
        opt_g, opt_d = gan.adam(2e-4, G), gan.adam(2e-4, D)

        def step(y):
            x = y.mean(1, keepdim=True)  # grey input (N, 1, S, S)
            fake = G(x)
            # D's loss is halved, which slows D down relative to G (Sec. 3.3)
            gan.descend(opt_d, 0.5 * gan.bce_d_loss(D(self._pair(x, y)), D(self._pair(x, fake.detach()))))
            return gan.descend(opt_g, self.g_loss(D(self._pair(x, fake)), fake, y))

        return G, D, step

    def bench(self, ctx):
        if not gan.have(ctx, "skimage", "Pix2Pix training on photo crops", pip="scikit-image"):
            return
        cfg = ctx.configs[0]
        train, test = self._data(ctx, cfg)
        G, _, step = self._setup(ctx, cfg)
        grey = test.mean(1, keepdim=True)
        held_out = torch.no_grad()(lambda: float((G.eval()(grey) - test).abs().mean()))  # mean |G(x) - y|
        before = held_out()
        G.train()
        losses = [step(y) for y in gan.minibatches(ctx.generator(5), cfg.steps, cfg.batch, train)]
        gan.steps_curve(ctx, "generator loss", losses, y_label="BCE + 100 L1")
        after = held_out()
        with torch.no_grad():
            pics = torch.cat([grey[:6].expand(-1, 3, -1, -1), G(grey[:6]), test[:6]])
        ctx.metric("l1_before", before)
        ctx.metric("l1_after", after)
        ctx.metric("l1_ratio", after / before)
        gan.grid(ctx, "grey -> colour (held-out chelsea crops)", pics, "rows: grey input, G(x), real photo", nrow=6)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        *_, step = self._setup(ctx, config)
        y = torch.rand(config.batch, 3, config.side, config.side, generator=ctx.generator(6)).to(ctx.device) * 2 - 1
        return Prepared(fn=lambda: step(y), items=1, item_unit="steps")
