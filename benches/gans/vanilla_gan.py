"""7.01 A vanilla GAN on handwritten digits.

Compared: the fully connected GAN of Goodfellow et al. ("Generative Adversarial Nets",
NeurIPS 2014) on sklearn's 1,797 real 8x8 digits (not MNIST: offline and seconds long). D
maximises ``log D(x) + log(1 - D(G(z)))``; G uses the *non-saturating* loss ``-log D(G(z))``
(their Sec. 3: early in training D rejects samples with high confidence, and
``log(1 - D(G(z)))`` saturates, so its gradient vanishes exactly when G needs it most).

Check: both losses equal a hand computation on fixed float64 logits; a D step leaves G without
a gradient and with its weights unchanged, and a G step leaves D's weights unchanged; after a
short training the samples lie in the tanh range [-1, 1] and their digits-feature FD is far
below that of uniform noise.

Bench: D+G steps/s and samples/s; a run records both losses, samples and the digits-feature FD
(not comparable to published FID: a small digits classifier's features, not Inception-v3 on
50,000 CIFAR images).

Lesson: the two players each step only their own parameters; forgetting ``.detach()`` on
the fakes does not move G by itself, but it leaves D's gradient sitting in G's ``.grad`` to
be added to the next G step, and costs a backward pass through G on every D step. Published
figure for scale: Goodfellow et al. report a Gaussian Parzen-window log-likelihood of
225 +/- 2 on MNIST (Table 1), an estimator later shown unreliable in high dimension (Theis
et al. 2016, "A note on the evaluation of generative models"), which is why FID replaced it.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, TrainingRun, task
from harness import gan_train as gan
from harness.claims import metric
from harness.gan_metric import LABEL, digits_images
from harness.mutants import Mutant
from kernels.gan import wrong
from models.gan import MLPGenerator


@dataclasses.dataclass(frozen=True)
class VanillaConfig:
    """Model width, batch and training length."""

    width: int = 128
    """hidden units of G and D"""
    z_dim: int = 32
    """noise dimension"""
    batch: int = 64
    """real and fake images per step"""
    steps: int = 300
    """D+G steps of the training run"""
    lr: float = 2e-3
    """Adam learning rate of both players (betas 0.5, 0.999 as in DCGAN); 10x DCGAN's 2e-4 so that
    a few hundred steps on 8x8 digits already give digit-like samples"""


@task("gans.vanilla_gan", seed="7.01", title="vanilla GAN for MNIST")
class VanillaGan(TrainingRun):
    __doc__ = __doc__
    variants = ("train_step", "sample")
    sizes = {
        "tiny": VanillaConfig(steps=400),
        "cpu": VanillaConfig(steps=1200),
        "gpu": VanillaConfig(width=1024, batch=256, steps=5000, lr=2e-4),  # Goodfellow's MNIST nets were ~1200 wide
    }
    metrics = {
        "digits_fd": LABEL + " (samples after training)",
        "noise_fd": LABEL + " of uniform noise in [-1, 1]",
        "fd_vs_noise": "digits_fd / noise_fd (below 1: closer to digits than noise is)",
    }
    claims = (metric("fd_vs_noise", "<=", 0.1, text="after training, sample FD <= 0.1x the FD of uniform noise"),)
    d_loss = staticmethod(gan.bce_d_loss)  # -[log D(x) + log(1 - D(G(z)))], batch means; logits (N,) -> scalar
    g_loss = staticmethod(gan.bce_g_loss)  # non-saturating: -log D(G(z))
    detach_fakes = True  # D's loss must not reach G
    generator_cls = MLPGenerator
    mutants = (
        Mutant(
            "saturating_g_loss",
            "G minimises log(1 - D(G(z)))",
            {"g_loss": wrong.saturating_g_loss},
            match="generator loss",
        ),
        Mutant("fake_not_detached", "the D step backpropagates into G", {"detach_fakes": False}, match="D step"),
        Mutant("no_tanh", "the generator has a linear output", {"generator_cls": wrong.NoTanhGenerator}, match="range"),
    )

    def _build(self, ctx, cfg):  # (G, D, opt_g, opt_d), seeded
        return gan.digits_pair(ctx.rng_seed, cfg, ctx.device, G_cls=self.generator_cls)

    def step(self, G, D, opt_g, opt_d, real, z_d, z_g):
        """One D step on fakes G(z_d), then one G step on G(z_g): (D loss, G loss), detached."""
        d = gan.d_step(G, D, opt_d, real, z_d, loss=self.d_loss, detach=self.detach_fakes)
        return d, gan.g_step(G, D, opt_g, z_g, loss=self.g_loss)

    def _train(self, ctx, cfg):
        """Trains ``cfg.steps`` steps; returns 512 samples (512, 1, 8, 8) and the D and G losses (steps,)."""
        G, *nets = self._build(ctx, cfg)
        z = lambda: torch.randn(cfg.batch, cfg.z_dim, device=ctx.device)  # noqa: E731 - two draws per step
        batches = gan.minibatches(ctx.generator(1), cfg.steps, cfg.batch, digits_images()[0].to(ctx.device))
        d_hist, g_hist = zip(*(self.step(G, *nets, real, z(), z()) for real in batches))
        return gan.sample(G, 512, cfg.z_dim, ctx.generator(2)), torch.stack(d_hist).cpu(), torch.stack(g_hist).cpu()

    def check(self, ctx):
        cfg = ctx.configs[0]
        r, f = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64), torch.tensor([-3.0, 0.0, 1.5], dtype=torch.float64)
        sig = lambda t: 1 / (1 + torch.exp(-t))  # noqa: E731 - the textbook formula, spelled out
        want = -(torch.log(sig(r)).mean() + torch.log(1 - sig(f)).mean())  # -[log D(x) + log(1 - D(G(z)))]
        ctx.assert_close(self.d_loss(r, f), want, name="discriminator loss")
        ctx.assert_close(self.g_loss(f), -torch.log(sig(f)).mean(), name="generator loss (non-saturating)")

        G, D, opt_g, opt_d = self._build(ctx, cfg)
        real = digits_images()[0][: cfg.batch].to(ctx.device)
        z = torch.randn(cfg.batch, cfg.z_dim, generator=ctx.generator()).to(ctx.device)
        g0, d0 = gan.snapshot(G), gan.snapshot(D)
        gan.d_step(G, D, opt_d, real, z, loss=self.d_loss, detach=self.detach_fakes)
        touched = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in G.parameters())
        ctx.expect(not touched, "the D step left a gradient in G: fakes not detached", name="D step leaves G alone")
        ctx.expect(gan.unchanged(g0, G), "the D step moved G's weights", name="D step leaves G alone")
        d1 = gan.snapshot(D)
        ctx.expect(not gan.unchanged(d0, D), "the D step did not move D", name="D step moves D")
        gan.g_step(G, D, opt_g, z, loss=self.g_loss)
        ctx.expect(gan.unchanged(d1, D), "the G step moved D's weights", name="G step leaves D alone")

        samples, _, _ = self._train(ctx, cfg)
        gan.expect_in_range(ctx, samples)
        gan.expect_fd_below(ctx, samples, gan.noise_fd(ctx.generator(3)), 0.35, name="FD below noise")

    def bench(self, ctx):
        cfg = ctx.configs[0]
        samples, d_hist, g_hist = self._train(ctx, cfg)
        gan.steps_curve(ctx, "GAN losses", d_hist.tolist(), series="D loss", y_label="BCE loss")
        gan.steps_curve(ctx, "GAN losses", g_hist.tolist(), series="G loss (non-saturating)", y_label="BCE loss")
        gan.grid(ctx, "samples", samples[:64], f"64 samples after {cfg.steps} steps")
        noise = gan.noise_fd(ctx.generator(3))
        ctx.metric("noise_fd", noise)
        gan.record_fd(ctx, samples, noise, "digits_fd", "fd_vs_noise")
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        G, *nets = self._build(ctx, config)
        real = digits_images()[0][: config.batch].to(ctx.device)
        z = torch.randn(config.batch, config.z_dim, device=ctx.device)
        if impl == "sample":
            return gan.sampling(G, z)
        return Prepared(fn=lambda: self.step(G, *nets, real, z, z), items=1, item_unit="steps")
