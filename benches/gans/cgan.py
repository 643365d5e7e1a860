"""7.03 A conditional GAN: the label steers the sample.

Compared: Mirza & Osindero's conditional GAN ("Conditional generative adversarial nets",
arXiv:1411.1784, 2014): generator and discriminator both receive the class label y (here a
learned embedding concatenated to z and to the flattened image), trained on sklearn's 1,797
real 8x8 digits with their labels.

Check: with z fixed, G(z, y) changes with y (mean absolute pixel change across the ten
labels); after a short training the harness's digits classifier (``harness.gan_metric``,
99 % held-out accuracy on real digits) labels G(z, y) as y well above chance (10 %); the
samples stay finite and in [-1, 1].

Bench: D+G steps/s and samples/s; a training run records the losses, a 10x10 grid (row =
asked-for label, column = fixed z), the classifier's accuracy on G(z, y) and the
digits-feature FD (not comparable to published FID).

Lesson: conditioning is two wires, one into each player; cut either and the model still
trains and still makes digits, just not the digit you asked for, so only a label-accuracy
test sees it. Mirza & Osindero report a Gaussian Parzen-window log-likelihood of 132 +/- 1.8
on MNIST for their conditional net (Table 1), against 225 for Goodfellow et al.'s
unconditional one; a number that Theis et al. (2016) showed says little about sample quality.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.gan_metric import LABEL, digits_fd, digits_images, label_accuracy
from harness.mutants import Mutant
from models.gan import GanConfig, MLPDiscriminator, MLPGenerator


@dataclasses.dataclass(frozen=True)
class CganConfig:
    """Model width, batch and training length."""

    width: int = 128
    """hidden units of G and D"""
    z_dim: int = 32
    """noise dimension"""
    batch: int = 64
    """real and fake images per step"""
    steps: int = 500
    """D+G steps"""
    lr: float = 2e-3
    """Adam learning rate, betas (0.5, 0.999); high so that a few hundred steps suffice"""


class _LabelBlindG(MLPGenerator):  # wrong: the generator ignores y
    def forward(self, z, y=None):
        return super().forward(z, torch.zeros_like(y))


class _LabelBlindD(MLPDiscriminator):  # wrong: the discriminator never sees y
    def forward(self, x, y=None):
        return super().forward(x, torch.zeros_like(y))


@task("gans.cgan", seed="7.03", title="conditional GAN")
class CGan(TrainingRun):
    __doc__ = __doc__
    variants = ("train_step", "sample")
    sizes = {
        "tiny": CganConfig(),
        "cpu": CganConfig(steps=1200),
        "gpu": CganConfig(width=1024, batch=256, steps=5000, lr=2e-4),
    }
    metrics = {
        "label_accuracy": "share of G(z, y) the digits classifier labels as y (chance 0.1)",
        "digits_fd": LABEL,
    }
    claims = (
        metric(
            "label_accuracy", ">=", 0.8, text="the digits classifier reads the asked-for label in >= 80 % of samples"
        ),
    )
    generator_cls = MLPGenerator
    discriminator_cls = MLPDiscriminator
    mutants = (
        Mutant("label_ignored_by_g", "G(z, y) ignores y", {"generator_cls": _LabelBlindG}, match="label"),
        Mutant("label_ignored_by_d", "D(x, y) ignores y", {"discriminator_cls": _LabelBlindD}, match="classifier"),
    )

    def _train(self, ctx, cfg):
        torch.manual_seed(ctx.rng_seed)
        gc = GanConfig(size=8, z_dim=cfg.z_dim, width=cfg.width, classes=10)
        G, D = self.generator_cls(gc).to(ctx.device), self.discriminator_cls(gc).to(ctx.device)
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        x, y = (t.to(ctx.device) for t in digits_images())
        g, hist = ctx.generator(1), []

        def step(real, labels, z):
            ones, zeros = torch.ones(len(labels), device=ctx.device), torch.zeros(len(labels), device=ctx.device)
            fake = G(z, labels)  # fakes carry the label they were asked for
            opt_d.zero_grad(set_to_none=True)
            d = F.binary_cross_entropy_with_logits(D(real, labels), ones)
            d = d + F.binary_cross_entropy_with_logits(D(fake.detach(), labels), zeros)
            d.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            gl = F.binary_cross_entropy_with_logits(D(fake, labels), ones)
            gl.backward()
            opt_g.step()
            return d.detach(), gl.detach()

        for _ in range(cfg.steps):
            idx = torch.randint(0, x.shape[0], (cfg.batch,), generator=g).to(ctx.device)
            hist.append(step(x[idx], y[idx], torch.randn(cfg.batch, cfg.z_dim, device=ctx.device)))
        return G, step, hist

    def _probe(self, ctx, G, cfg):
        """Ten labels x ten fixed z: images (100, 1, 8, 8), row = label, and the labels (100,)."""
        z = torch.randn(10, cfg.z_dim, generator=ctx.generator(2)).to(ctx.device).repeat(10, 1)  # (100, z)
        y = torch.arange(10, device=ctx.device).repeat_interleave(10)  # (100,)
        with torch.no_grad():
            return G(z, y), y

    def check(self, ctx):
        cfg = ctx.configs[0]
        G, _, _ = self._train(ctx, cfg)
        imgs, y = self._probe(ctx, G, cfg)
        grid = imgs.view(10, 10, 64)  # (label, z, pixels)
        spread = float((grid - grid.mean(0, keepdim=True)).abs().mean())
        ctx.expect(
            spread > 0.05,
            f"with z fixed, G(z, y) hardly changes with the label (mean |change| {spread:.4f})",
            name="G(z, y) changes with the label",
        )
        ctx.expect(
            bool(torch.isfinite(imgs).all()) and float(imgs.abs().max()) <= 1,
            "samples not finite or outside [-1, 1]",
            name="samples in range",
        )
        acc = label_accuracy(imgs, y)
        ctx.expect(
            acc >= 0.4,
            f"the digits classifier reads the asked-for label in {acc:.0%} of samples (chance 10 %)",
            name="classifier reads the label",
        )

    def bench(self, ctx):
        cfg = ctx.configs[0]
        G, _, hist = self._train(ctx, cfg)
        steps = list(range(1, cfg.steps + 1))
        ctx.curve("GAN losses", steps, [float(d) for d, _ in hist], series="D loss", y_label="BCE loss")
        ctx.curve("GAN losses", steps, [float(g) for _, g in hist], series="G loss", y_label="BCE loss")
        imgs, y = self._probe(ctx, G, cfg)
        ctx.image(
            "samples by label",
            imgs,
            nrow=10,
            vmin=-1,
            vmax=1,
            caption="row r: G(z, r) for ten fixed z (one per column)",
        )
        ctx.metric("label_accuracy", label_accuracy(imgs, y))
        with torch.no_grad():
            big = G(
                torch.randn(500, cfg.z_dim, generator=ctx.generator(3)).to(ctx.device),
                torch.arange(10, device=ctx.device).repeat(50),
            )
        ctx.metric("digits_fd", digits_fd(big))
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        short = dataclasses.replace(config, steps=1)
        G, step, _ = self._train(ctx, short)
        x, y = (t[: config.batch].to(ctx.device) for t in digits_images())
        z = torch.randn(config.batch, config.z_dim, device=ctx.device)
        if impl == "sample":
            return Prepared(fn=torch.no_grad()(lambda: G(z, y)), items=config.batch, item_unit="samples")
        return Prepared(fn=lambda: step(x, y, z), items=1, item_unit="steps")
