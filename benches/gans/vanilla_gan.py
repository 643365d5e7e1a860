"""7.01 A vanilla GAN on handwritten digits.

Compared: the fully connected GAN of Goodfellow et al. ("Generative Adversarial Nets",
NeurIPS 2014) trained on sklearn's 1,797 real 8x8 digits (MNIST itself comes through
``--data-dir`` only; the digits keep the check offline and seconds long). The discriminator
D maximises ``log D(x) + log(1 - D(G(z)))``; the generator uses the *non-saturating* loss
``-log D(G(z))`` (their Sec. 3: early in training D rejects samples with high confidence, and
``log(1 - D(G(z)))`` saturates, so its gradient vanishes exactly when G needs it most).

Check: both losses equal a hand computation on fixed logits (float64 formulas); a D step
leaves G without a gradient and with its weights unchanged (the fakes are detached), and a G
step leaves D's weights unchanged; after a short training the samples are finite, inside the
tanh range [-1, 1], and their digits-feature FD is far below that of uniform noise.

Bench: one D+G training step (steps/s) and sampling (samples/s); a training run records the
two losses, a grid of samples and the digits-feature FD (not comparable to published FID:
features of a small digits classifier, not Inception-v3 on 50,000 CIFAR images).

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
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.gan_metric import LABEL, digits_fd, digits_images
from harness.mutants import Mutant
from models.gan import GanConfig, MLPDiscriminator, MLPGenerator


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


class _Linear(MLPGenerator):  # wrong: no tanh, samples leave [-1, 1]
    def __init__(self, cfg):
        super().__init__(cfg)
        self.net[-1] = torch.nn.Identity()


def _saturating(self, fake_logits):  # wrong: the minimax loss log(1 - D(G(z))), minimised
    return torch.log1p(-torch.sigmoid(fake_logits)).mean()


def _d_step_attached(self, G, D, opt_d, real, z):  # wrong: fakes not detached
    opt_d.zero_grad(set_to_none=True)
    loss = self.d_loss(D(real), D(G(z)))
    loss.backward()
    opt_d.step()
    return loss.detach()


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
    generator_cls = MLPGenerator
    mutants = (
        Mutant("saturating_g_loss", "G minimises log(1 - D(G(z)))", {"g_loss": _saturating}, match="generator loss"),
        Mutant("fake_not_detached", "the D step backpropagates into G", {"d_step": _d_step_attached}, match="D step"),
        Mutant("no_tanh", "the generator has a linear output", {"generator_cls": _Linear}, match="range"),
    )

    # -- the losses and the two steps -----------------------------------------------------
    def d_loss(self, real_logits, fake_logits):
        """-[log D(x) + log(1 - D(G(z)))], batch-mean; logits (N,) -> scalar."""
        return F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))

    def g_loss(self, fake_logits):
        """Non-saturating: -log D(G(z)), batch-mean."""
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))

    def d_step(self, G, D, opt_d, real, z):
        opt_d.zero_grad(set_to_none=True)
        loss = self.d_loss(D(real), D(G(z).detach()))  # detach: D's loss must not reach G
        loss.backward()
        opt_d.step()
        return loss.detach()

    def g_step(self, G, D, opt_g, z):
        opt_g.zero_grad(set_to_none=True)
        loss = self.g_loss(D(G(z)))
        loss.backward()
        opt_g.step()
        return loss.detach()

    def _build(self, cfg, device):
        gc = GanConfig(size=8, z_dim=cfg.z_dim, width=cfg.width)
        G, D = self.generator_cls(gc).to(device), MLPDiscriminator(gc).to(device)
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        return G, D, opt_g, opt_d

    def _train(self, ctx, cfg):
        torch.manual_seed(ctx.rng_seed)
        G, D, opt_g, opt_d = self._build(cfg, ctx.device)
        x = digits_images()[0].to(ctx.device)
        g = ctx.generator(1)
        d_hist, g_hist = [], []
        for _ in range(cfg.steps):
            real = x[torch.randint(0, x.shape[0], (cfg.batch,), generator=g).to(ctx.device)]
            d_hist.append(self.d_step(G, D, opt_d, real, torch.randn(cfg.batch, cfg.z_dim, device=ctx.device)))
            g_hist.append(self.g_step(G, D, opt_g, torch.randn(cfg.batch, cfg.z_dim, device=ctx.device)))
        with torch.no_grad():
            samples = G(torch.randn(512, cfg.z_dim, generator=ctx.generator(2)).to(ctx.device))
        return samples, torch.stack(d_hist).cpu(), torch.stack(g_hist).cpu()

    # -- check -----------------------------------------------------------------------------
    def check(self, ctx):
        cfg = ctx.configs[0]
        r = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
        f = torch.tensor([-3.0, 0.0, 1.5], dtype=torch.float64)
        sig = lambda t: 1 / (1 + torch.exp(-t))  # noqa: E731 - the textbook formula, spelled out
        ctx.assert_close(
            self.d_loss(r, f), -(torch.log(sig(r)).mean() + torch.log(1 - sig(f)).mean()), name="discriminator loss"
        )
        ctx.assert_close(self.g_loss(f), -torch.log(sig(f)).mean(), name="generator loss (non-saturating)")

        torch.manual_seed(ctx.rng_seed)
        G, D, opt_g, opt_d = self._build(cfg, ctx.device)
        real = digits_images()[0][: cfg.batch].to(ctx.device)
        z = torch.randn(cfg.batch, cfg.z_dim, generator=ctx.generator()).to(ctx.device)
        g0, d0 = [p.detach().clone() for p in G.parameters()], [p.detach().clone() for p in D.parameters()]
        self.d_step(G, D, opt_d, real, z)
        touched = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in G.parameters())
        ctx.expect(
            not touched, "the D step left a gradient in G: the fakes were not detached", name="D step leaves G alone"
        )
        ctx.expect(
            all(torch.equal(a, p) for a, p in zip(g0, G.parameters())),
            "the D step moved G's weights",
            name="D step leaves G alone",
        )
        d1 = [p.detach().clone() for p in D.parameters()]
        ctx.expect(
            any(not torch.equal(a, p) for a, p in zip(d0, d1)), "the D step did not move D", name="D step moves D"
        )
        self.g_step(G, D, opt_g, z)
        ctx.expect(
            all(torch.equal(a, p) for a, p in zip(d1, D.parameters())),
            "the G step moved D's weights",
            name="G step leaves D alone",
        )

        samples, _, _ = self._train(ctx, cfg)
        ctx.expect(bool(torch.isfinite(samples).all()), "samples contain NaN or inf", name="samples finite")
        lo, hi = float(samples.min()), float(samples.max())
        ctx.expect(
            -1 <= lo and hi <= 1,
            f"samples span [{lo:.2f}, {hi:.2f}], outside the tanh range [-1, 1]",
            name="samples in range",
        )
        fd, noise = digits_fd(samples), digits_fd(torch.rand(512, 1, 8, 8, generator=ctx.generator(3)) * 2 - 1)
        ctx.expect(
            fd < 0.35 * noise, f"sample FD {fd:.1f} is not below 0.35x noise FD {noise:.1f}", name="FD below noise"
        )

    # -- bench -----------------------------------------------------------------------------
    def bench(self, ctx):
        cfg = ctx.configs[0]
        samples, d_hist, g_hist = self._train(ctx, cfg)
        steps = list(range(1, cfg.steps + 1))
        ctx.curve("GAN losses", steps, d_hist.tolist(), series="D loss", y_label="BCE loss")
        ctx.curve("GAN losses", steps, g_hist.tolist(), series="G loss (non-saturating)", y_label="BCE loss")
        ctx.image("samples", samples[:64], nrow=8, vmin=-1, vmax=1, caption=f"64 samples after {cfg.steps} steps")
        fd = digits_fd(samples)
        noise = digits_fd(torch.rand(512, 1, 8, 8, generator=ctx.generator(3)) * 2 - 1)
        ctx.metric("digits_fd", fd)
        ctx.metric("noise_fd", noise)
        ctx.metric("fd_vs_noise", fd / noise)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        torch.manual_seed(ctx.rng_seed)
        G, D, opt_g, opt_d = self._build(config, ctx.device)
        real = digits_images()[0][: config.batch].to(ctx.device)
        z = torch.randn(config.batch, config.z_dim, device=ctx.device)
        if impl == "sample":
            return Prepared(fn=torch.no_grad()(lambda: G(z)), items=config.batch, item_unit="samples")

        def step():
            self.d_step(G, D, opt_d, real, z)
            self.g_step(G, D, opt_g, z)

        return Prepared(fn=step, items=1, item_unit="steps")
