"""7.10 GAN vs VAE on the same digits, the same budget and one metric.

Compared: a GAN (MLP generator and discriminator, non-saturating loss; Goodfellow et al. 2014)
and a VAE (MLP encoder to (mu, log sigma^2), tanh decoder; Kingma & Welling, "Auto-encoding
variational Bayes", ICLR 2014), equal in noise dimension, width, batch, optimizer and steps on
sklearn's real 8x8 digits, scored by the digits-feature FD of their samples (VAE: decoder at
z ~ N(0, I)); training samples/s of each, loss curves and sample grids.

Check: the KL term ``-1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)`` equals torch.distributions'
``kl_divergence``; ``z = mu + sigma * eps`` passes dz/dmu = 1 and dz/dlog sigma^2 = sigma eps / 2;
after equal short training both give samples in [-1, 1] whose FD is far below that of noise.

Lesson: the VAE optimises a bound on likelihood, so it covers every mode but pays for its
Gaussian decoder with blur; the GAN optimises what a discriminator can tell apart: sharp samples,
but it may drop modes, and it has no encoder and no likelihood. Which one a feature-statistics
metric prefers depends on the budget and the features (ours: one seed, one tiny data set). On
CIFAR-10, DDPM (Ho et al. 2020, Table 1), likelihood-based like the VAE, reports FID 3.17 and
Inception score 9.46, against 6.16 for DCGAN and 7.86 for WGAN-GP (Inception scores as tabulated
by Gulrajani et al. 2017); none of these is comparable with our digits-feature FD.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from harness import Comparison, Prepared, task
from harness import gan_train as gan
from harness.claims import metric
from harness.gan_metric import LABEL, digits_images
from harness.mutants import Mutant
from kernels.gan import wrong
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
        Mutant("kl_sigma_is_var", "KL uses exp(log_var) as sigma", {"kl": wrong.kl_sigma_is_var}, match="KL"),
        Mutant(
            "sigma_detached",
            "z = mu + sigma.detach() * eps",
            {"reparam": wrong.sigma_detached},
            match="reparameterised",
        ),
    )

    def kl(self, mu, log_var):
        """KL(N(mu, sigma) || N(0, I)) summed over z, batch-mean; mu, log_var (N, z) -> scalar."""
        return -0.5 * (1 + log_var - mu.square() - log_var.exp()).sum(1).mean()

    def reparam(self, mu, log_var, eps):
        return mu + torch.exp(0.5 * log_var) * eps  # sigma = exp(log sigma^2 / 2)

    def _vae_step(self, vae, opt, x, eps):
        """One step on the negative ELBO of x (N, 1, 8, 8) with noise eps (N, z); returns it detached."""
        mu, log_var = vae.encode(x)
        recon = vae.decode(self.reparam(mu, log_var, eps))
        # Gaussian decoder with variance 1/2: -log p(x|z) = sum of squared errors + const
        return gan.descend(opt, F.mse_loss(recon, x, reduction="sum") / x.shape[0] + self.kl(mu, log_var))

    def _models(self, cfg, device):
        torch.manual_seed(0)
        gc = GanConfig(size=8, z_dim=cfg.z_dim, width=cfg.width)
        G, D, vae = MLPGenerator(gc).to(device), MLPDiscriminator(gc).to(device), VAE(gc).to(device)
        opt_g, opt_d, opt_v = (gan.adam(cfg.lr, m) for m in (G, D, vae))
        gan_step = functools.partial(gan.gan_step, G, D, opt_g, opt_d)  # (real, z) -> (D loss, G loss)
        vae_step = functools.partial(self._vae_step, vae, opt_v)  # (real, eps) -> negative ELBO
        return G, vae, digits_images()[0].to(device), gan_step, vae_step

    def _train(self, ctx, cfg):
        G, vae, x, gan_step, vae_step = self._models(cfg, ctx.device)
        hist = {"gan": [], "vae": []}
        for real in gan.minibatches(ctx.generator(1), cfg.steps, cfg.batch, x):
            hist["gan"].append(gan_step(real, torch.randn(cfg.batch, cfg.z_dim, device=ctx.device))[1])
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
        missing = [n for n, d in (("mu", d_mu), ("log sigma^2", d_lv)) if d is None]
        ctx.expect(not missing, f"no gradient reaches {missing}: not reparameterised", name="reparameterised gradients")
        ctx.assert_close(d_mu, torch.ones_like(mu), name="reparameterised gradients: dz/dmu")
        sigma = torch.exp(0.5 * log_var).detach()
        ctx.assert_close(d_lv, 0.5 * sigma * eps, name="reparameterised gradients: dz/dlog_var")
        samples, _ = self._train(ctx, cfg)
        noise = gan.noise_fd(ctx.generator(4))
        for name, s in samples.items():
            gan.expect_in_range(ctx, s, f"{name} samples")
            gan.expect_fd_below(ctx, s, noise, 0.5, name="both beat noise", who=f"{name} sample")

    def bench(self, ctx):
        cfg = ctx.configs[0]
        samples, hist = self._train(ctx, cfg)
        gan.steps_curve(ctx, "GAN G loss", hist["gan"], y_label="BCE loss")
        gan.steps_curve(ctx, "VAE loss (negative ELBO)", hist["vae"], y_label="nats (up to a constant)")
        noise = gan.noise_fd(ctx.generator(4))
        ctx.metric("noise_fd", noise)
        for name, s in samples.items():
            gan.grid(ctx, f"{name} samples", s[:64], f"{name.upper()}: 64 samples after {cfg.steps} steps")
            gan.record_fd(ctx, s, noise, f"{name}_fd", f"{name}_fd_vs_noise")
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        G, vae, x, gan_step, vae_step = self._models(config, ctx.device)
        real, z = x[: config.batch], torch.randn(config.batch, config.z_dim, device=ctx.device)
        fn = gan_step if impl == "gan_step" else vae_step  # a GAN step is a D and a G step
        return Prepared(fn=lambda: fn(real, z), items=config.batch, item_unit="samples")
