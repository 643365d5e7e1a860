"""7.10 GAN vs VAE on the same digits, the same budget and one metric.

Compared: a GAN (MLP generator and discriminator, non-saturating loss; Goodfellow et al. 2014)
and a VAE (MLP encoder to (mu, log sigma^2), decoder with tanh output; Kingma & Welling,
"Auto-encoding variational Bayes", ICLR 2014), same noise dimension, width, batch, optimizer
and number of steps on sklearn's real 8x8 digits, both scored by the digits-feature FD of
their samples (the VAE's: decoder outputs at z ~ N(0, I)).

Check: the VAE's KL term ``-1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)`` equals
``torch.distributions.kl_divergence(N(mu, sigma), N(0, I))``; the reparameterised sample
``z = mu + sigma * eps`` passes gradients to mu (dz/dmu = 1) and to log sigma^2
(dz/dlog sigma^2 = sigma eps / 2), and the encoder's weights get a gradient; after equal short
training both models give finite samples in [-1, 1] whose FD is far below that of noise.

Bench: training steps/s of each (a GAN step is a D and a G step) and samples/s; the run
records both loss curves, a sample grid per model and the two FDs (digits-feature FD, not
comparable to published FID).

Lesson: the VAE optimises a bound on likelihood, so it covers every mode but pays for the
Gaussian decoder with blur; the GAN optimises what a discriminator can tell apart, so its
samples are sharp but it may drop modes, and it has no encoder and no likelihood. Which one a
feature-statistics metric prefers depends on the budget and the features; our numbers are one
seed on one tiny data set. Published figures for scale: on CIFAR-10, DDPM (Ho et al. 2020,
Table 1), a likelihood-based model like the VAE, reports FID 3.17 and Inception score 9.46,
against 6.16 for DCGAN and 7.86 for WGAN-GP (Inception scores as tabulated by Gulrajani et al.
2017); not comparable with our digits FD (other features, data and resolution).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from harness import Comparison, Prepared, task
from harness.claims import metric
from harness.gan_metric import LABEL, digits_fd, digits_images
from harness.mutants import Mutant
from models.gan import VAE, GanConfig, MLPDiscriminator, MLPGenerator


@dataclasses.dataclass(frozen=True)
class VsConfig:
    """The shared budget of both models."""

    width: int = 128
    """hidden units"""
    z_dim: int = 16
    """latent / noise dimension"""
    batch: int = 64
    """images per step"""
    steps: int = 400
    """training steps of each model"""
    lr: float = 2e-3
    """Adam learning rate of every network, betas (0.5, 0.999)"""


@task("gans.gan_vs_vae", seed="7.10", title="GAN vs VAE")
class GanVsVae(Comparison):
    __doc__ = __doc__
    variants = ("gan_step", "vae_step")
    sizes = {"tiny": VsConfig(), "cpu": VsConfig(steps=1200), "gpu": VsConfig(width=1024, batch=256, steps=5000)}
    metrics = {
        "gan_fd": LABEL + " of GAN samples",
        "vae_fd": LABEL + " of VAE samples (z ~ N(0, I))",
        "noise_fd": LABEL + " of uniform noise",
        "vae_fd_vs_noise": "vae_fd / noise_fd",
        "gan_fd_vs_noise": "gan_fd / noise_fd",
    }
    claims = (
        metric("vae_fd_vs_noise", "<=", 0.3, text="VAE sample FD <= 0.3x that of noise after the run"),
        metric("gan_fd_vs_noise", "<=", 0.3, text="GAN sample FD <= 0.3x that of noise after the same budget"),
    )
    mutants = (
        Mutant(
            "kl_sigma_is_var",
            "KL uses exp(log_var) as sigma",
            {"kl": lambda self, mu, lv: -0.5 * (1 + 2 * lv - mu**2 - torch.exp(2 * lv)).sum(1).mean()},
            match="KL",
        ),
        Mutant(
            "sigma_detached",
            "z = mu + sigma.detach() * eps",
            {"reparam": lambda self, mu, lv, eps: mu + torch.exp(0.5 * lv).detach() * eps},
            match="reparameterised",
        ),
    )

    def kl(self, mu, log_var):
        """KL(N(mu, sigma) || N(0, I)) summed over z, batch-mean; mu, log_var (N, z) -> scalar."""
        return -0.5 * (1 + log_var - mu.square() - log_var.exp()).sum(1).mean()

    def reparam(self, mu, log_var, eps):
        return mu + torch.exp(0.5 * log_var) * eps  # sigma = exp(log sigma^2 / 2)

    def _vae_loss(self, vae, x, eps):
        mu, log_var = vae.encode(x)
        recon = vae.decode(self.reparam(mu, log_var, eps))
        # Gaussian decoder with variance 1/2: -log p(x|z) = sum of squared errors + const
        return F.mse_loss(recon, x, reduction="sum") / x.shape[0] + self.kl(mu, log_var)

    def _models(self, cfg, device):
        torch.manual_seed(0)
        gc = GanConfig(size=8, z_dim=cfg.z_dim, width=cfg.width)
        G, D, vae = MLPGenerator(gc).to(device), MLPDiscriminator(gc).to(device), VAE(gc).to(device)
        opt = lambda m: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=(0.5, 0.999))  # noqa: E731 - three alike
        x = digits_images()[0].to(device)

        def gan_step(real, z):
            ones, zeros = torch.ones(len(real), device=device), torch.zeros(len(real), device=device)
            o_d.zero_grad(set_to_none=True)
            d = F.binary_cross_entropy_with_logits(D(real), ones) + F.binary_cross_entropy_with_logits(
                D(G(z).detach()), zeros
            )
            d.backward()
            o_d.step()
            o_g.zero_grad(set_to_none=True)
            g = F.binary_cross_entropy_with_logits(D(G(z)), ones)
            g.backward()
            o_g.step()
            return g.detach()

        def vae_step(real, eps):
            o_v.zero_grad(set_to_none=True)
            loss = self._vae_loss(vae, real, eps)
            loss.backward()
            o_v.step()
            return loss.detach()

        o_g, o_d, o_v = opt(G), opt(D), opt(vae)
        return G, vae, x, gan_step, vae_step

    def _train(self, ctx, cfg):
        G, vae, x, gan_step, vae_step = self._models(cfg, ctx.device)
        g, hist = ctx.generator(1), {"gan": [], "vae": []}
        for _ in range(cfg.steps):
            real = x[torch.randint(0, x.shape[0], (cfg.batch,), generator=g).to(ctx.device)]
            hist["gan"].append(gan_step(real, torch.randn(cfg.batch, cfg.z_dim, device=ctx.device)))
            hist["vae"].append(vae_step(real, torch.randn(cfg.batch, cfg.z_dim, device=ctx.device)))
        z = torch.randn(512, cfg.z_dim, generator=ctx.generator(2)).to(ctx.device)
        with torch.no_grad():  # the same z for both: the GAN's noise, the VAE's prior sample
            return {"gan": G(z), "vae": vae.decode(z)}, hist

    def check(self, ctx):
        cfg = ctx.configs[0]
        mu, log_var = (torch.randn(5, 4, generator=ctx.generator(i), dtype=torch.float64) for i in (1, 2))
        want = kl_divergence(Normal(mu, torch.exp(0.5 * log_var)), Normal(0.0, 1.0)).sum(1).mean()
        ctx.assert_close(self.kl(mu, log_var), want, name="KL = torch.distributions.kl_divergence")
        mu, log_var = mu.clone().requires_grad_(True), log_var.clone().requires_grad_(True)
        eps = torch.randn(5, 4, generator=ctx.generator(3), dtype=torch.float64)
        d_mu, d_lv = torch.autograd.grad(self.reparam(mu, log_var, eps).sum(), (mu, log_var), allow_unused=True)
        ctx.expect(
            d_mu is not None and d_lv is not None,
            "no gradient reaches mu or log sigma^2: not reparameterised",
            name="reparameterised gradients",
        )
        ctx.assert_close(d_mu, torch.ones_like(mu), name="reparameterised gradients: dz/dmu")
        ctx.assert_close(
            d_lv, (0.5 * torch.exp(0.5 * log_var) * eps).detach(), name="reparameterised gradients: dz/dlog_var"
        )
        samples, _ = self._train(ctx, cfg)
        noise = digits_fd(torch.rand(512, 1, 8, 8, generator=ctx.generator(4)) * 2 - 1)
        for name, s in samples.items():
            ctx.expect(
                bool(torch.isfinite(s).all()) and float(s.abs().max()) <= 1,
                f"{name} samples not finite or outside [-1, 1]",
                name="samples in range",
            )
            fd = digits_fd(s)
            ctx.expect(
                fd < 0.5 * noise,
                f"{name} sample FD {fd:.1f} is not below half of noise FD {noise:.1f}",
                name="both beat noise",
            )

    def bench(self, ctx):
        cfg = ctx.configs[0]
        samples, hist = self._train(ctx, cfg)
        steps = list(range(1, cfg.steps + 1))
        ctx.curve("GAN G loss", steps, [float(v) for v in hist["gan"]], y_label="BCE loss")
        ctx.curve("VAE loss (negative ELBO)", steps, [float(v) for v in hist["vae"]], y_label="nats (up to a constant)")
        noise = digits_fd(torch.rand(512, 1, 8, 8, generator=ctx.generator(4)) * 2 - 1)
        ctx.metric("noise_fd", noise)
        for name, s in samples.items():
            ctx.image(
                f"{name} samples",
                s[:64],
                nrow=8,
                vmin=-1,
                vmax=1,
                caption=f"{name.upper()}: 64 samples after {cfg.steps} steps",
            )
            fd = digits_fd(s)
            ctx.metric(f"{name}_fd", fd)
            ctx.metric(f"{name}_fd_vs_noise", fd / noise)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        G, vae, x, gan_step, vae_step = self._models(config, ctx.device)
        real, z = x[: config.batch], torch.randn(config.batch, config.z_dim, device=ctx.device)
        fn = gan_step if impl == "gan_step" else vae_step
        return Prepared(fn=lambda: fn(real, z), items=config.batch, item_unit="samples")
