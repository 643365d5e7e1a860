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
import functools

import torch

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.gan_metric import LABEL, digits_fd, digits_images, label_accuracy
from harness.gan_train import adam, expect_in_range, gan_step, grid, minibatches, sample, sampling, steps_curve
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
        step = functools.partial(gan_step, G, D, adam(cfg.lr, G), adam(cfg.lr, D))  # (real, z, y) -> (d, g)
        x, y = (t.to(ctx.device) for t in digits_images())
        batches = minibatches(ctx.generator(1), cfg.steps, cfg.batch, x, y)
        # fakes carry the label they were asked for: G(z, y) is judged as D(., y)
        hist = [step(real, torch.randn(cfg.batch, cfg.z_dim, device=ctx.device), labels) for real, labels in batches]
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
        by_label = imgs.view(10, 10, 64)  # (label, z, pixels)
        spread = float((by_label - by_label.mean(0, keepdim=True)).abs().mean())
        ctx.expect(
            spread > 0.05,
            f"with z fixed, G(z, y) hardly changes with the label (mean |change| {spread:.4f})",
            name="G(z, y) changes with the label",
        )
        expect_in_range(ctx, imgs)
        acc = label_accuracy(imgs, y)
        ctx.expect(
            acc >= 0.4,
            f"the digits classifier reads the asked-for label in {acc:.0%} of samples (chance 10 %)",
            name="classifier reads the label",
        )

    def bench(self, ctx):
        cfg = ctx.configs[0]
        G, _, hist = self._train(ctx, cfg)
        steps_curve(ctx, "GAN losses", [d for d, _ in hist], series="D loss", y_label="BCE loss")
        steps_curve(ctx, "GAN losses", [g for _, g in hist], series="G loss", y_label="BCE loss")
        imgs, y = self._probe(ctx, G, cfg)
        grid(ctx, "samples by label", imgs, "row r: G(z, r) for ten fixed z (one per column)", nrow=10)
        ctx.metric("label_accuracy", label_accuracy(imgs, y))
        big = sample(G, 500, cfg.z_dim, ctx.generator(3), torch.arange(10, device=ctx.device).repeat(50))
        ctx.metric("digits_fd", digits_fd(big))
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        G, step, _ = self._train(ctx, dataclasses.replace(config, steps=1))
        x, y = (t[: config.batch].to(ctx.device) for t in digits_images())
        z = torch.randn(config.batch, config.z_dim, device=ctx.device)
        if impl == "sample":
            return sampling(G, z, y)
        return Prepared(fn=lambda: step(x, z, y), items=1, item_unit="steps")
