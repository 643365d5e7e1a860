"""7.04 WGAN with gradient penalty.

Compared: Gulrajani et al.'s WGAN-GP ("Improved training of Wasserstein GANs", NeurIPS 2017,
Algorithm 1): a critic f (no sigmoid: a score, not a probability) maximises ``E f(x) - E f(G(z))``;
instead of clipping weights, the loss adds ``lambda * E (||grad f(x_hat)||_2 - 1)^2`` at
``x_hat = eps x + (1 - eps) G(z)``, one ``eps ~ U[0, 1]`` per sample, lambda = 10, n_critic = 5
critic steps per G step, Adam(1e-4, betas (0, 0.9)); MLP nets on sklearn's real 8x8 digits.

Check: for a linear critic f(x) = w.x + b, the penalty and its gradient in w (which exists only
with ``create_graph=True``) against closed forms; one eps per sample; a critic without sigmoid or
batch norm (which mixes the samples of a per-sample penalty: Sec. 4); a few iterations stay finite.

Lesson: the penalty is a gradient of a gradient: ``torch.autograd.grad(..., create_graph=True)``
keeps the input gradient's graph so that the penalty can itself be differentiated; with
``create_graph=False`` it is a constant and the critic is unconstrained. For scale, not comparable
with our FD: Inception score 7.86 on unsupervised CIFAR-10 with a ResNet, 6.16 for DCGAN (their Table 3).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness import Prepared, TrainingRun, task
from harness import gan_train as gan
from harness.claims import time_ratio
from harness.gan_metric import LABEL, digits_fd, digits_images
from harness.mutants import Mutant
from kernels.gan import wrong
from models.gan import MLPDiscriminator


@dataclasses.dataclass(frozen=True)
class WganConfig:
    """Model width, batch and training length."""

    width: int = 128
    """hidden units of G and the critic"""
    z_dim: int = 32
    """noise dimension"""
    batch: int = 64
    """images per critic step"""
    iters: int = 10
    """generator iterations (each after n_critic critic steps)"""
    lr: float = 1e-4
    """Adam learning rate (Gulrajani et al.: 1e-4, betas (0, 0.9))"""


@task("gans.wgan_gp", seed="7.04", title="WGAN with gradient penalty")
class WganGp(TrainingRun):
    __doc__ = __doc__
    variants = ("critic_step_gp", "critic_step_no_gp", "train_iter", "sample")
    baseline_variant = "critic_step_no_gp"
    sizes = {
        "tiny": WganConfig(),
        "cpu": WganConfig(iters=250, lr=5e-4),
        "gpu": WganConfig(width=512, batch=256, iters=5000),
    }
    metrics = {"digits_fd": LABEL, "noise_fd": LABEL + " of uniform noise"}
    claims = (
        time_ratio(
            "critic_step_gp",
            to="critic_step_no_gp",
            at_most=4.0,
            text="the penalty costs at most 4x a plain critic step",
        ),
    )
    lam, n_critic = 10.0, 5
    create_graph = True
    eps_per_sample = True  # one interpolation weight per sample (Algorithm 1), broadcast over (C, H, W)
    critic_cls, betas = MLPDiscriminator, (0.0, 0.9)  # Adam betas as published
    mutants = (
        Mutant("no_create_graph", "input gradient without create_graph", {"create_graph": False}, match="create_graph"),
        Mutant("one_eps_per_batch", "one eps for the whole batch", {"eps_per_sample": False}, match="per sample"),
        Mutant("bn_critic", "batch norm in the critic", {"critic_cls": wrong.BNCritic}, match="batch norm"),
    )

    def penalty(self, critic, real, fake, g=None):
        """(lambda E (||grad_x_hat f|| - 1)^2, eps (N, 1, 1, 1)); real, fake (N, C, H, W)."""
        n = real.shape[0]
        eps = torch.rand(n if self.eps_per_sample else 1, 1, 1, 1, generator=g).to(real).expand(n, 1, 1, 1)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=self.create_graph)
        return self.lam * (grad.flatten(1).norm(dim=1) - 1).square().mean(), eps

    def critic_step(self, G, C, opt_c, real, z, gp=True):
        fake = G(z).detach()
        w_est = C(real).mean() - C(fake).mean()  # the critic's Wasserstein estimate
        gan.descend(opt_c, -w_est + (self.penalty(C, real, fake)[0] if gp else 0.0))
        return w_est.detach()

    def train_iter(self, nets, x, cfg, g):
        """n_critic critic steps on fresh real batches of x, then one G step; returns the last estimate."""
        G, C, opt_g, opt_c = nets
        for real in gan.minibatches(g, self.n_critic, cfg.batch, x):
            w = self.critic_step(G, C, opt_c, real, torch.randn(cfg.batch, cfg.z_dim, device=x.device))
        gan.g_step(G, C, opt_g, torch.randn(cfg.batch, cfg.z_dim, device=x.device), loss=lambda f: -f.mean())
        return w

    def _run(self, ctx, cfg):
        """Builds and trains ``cfg.iters`` iterations: (nets, the Wasserstein estimate after each)."""
        nets = gan.digits_pair(ctx.rng_seed, cfg, ctx.device, D_cls=self.critic_cls, betas=self.betas)
        x, g = digits_images()[0].to(ctx.device), ctx.generator(4)
        return nets, [float(self.train_iter(nets, x, cfg, g)) for _ in range(cfg.iters)]

    def check(self, ctx):
        hyper = (self.lam, self.n_critic)
        ctx.expect(hyper == (10, 5), f"(lambda, n_critic) = {hyper}: want (10, 5)", name="lambda 10, n_critic 5")
        lin = nn.Sequential(nn.Flatten(), nn.Linear(64, 1)).double()
        real, fake = (torch.randn(16, 1, 8, 8, generator=ctx.generator(i), dtype=torch.float64) for i in (1, 2))
        pen, eps = self.penalty(lin, real, fake, g=ctx.generator(3))
        w = lin[1].weight
        ctx.assert_close(pen.detach(), self.lam * (w.norm() - 1).detach() ** 2, name="penalty = lambda (||w|| - 1)^2")
        no_graph = "the penalty has no graph: the input gradient needs create_graph=True"
        ctx.expect(pen.requires_grad, no_graph, name="penalty differentiable (create_graph)")
        (dw,) = torch.autograd.grad(pen, w)
        ctx.assert_close(dw, (2 * self.lam * (w.norm() - 1) * w / w.norm()).detach(), name="d penalty / dw")
        n_eps = eps.flatten().unique().numel()
        ctx.expect(n_eps == 16, f"{n_eps} interpolation weights, want one per sample", name="interpolation per sample")
        nets, ws = self._run(ctx, ctx.configs[0])
        kinds = (nn.Sigmoid, nn.modules.batchnorm._BatchNorm)  # a score, not a probability; per-sample penalty
        bad = [type(m).__name__ for m in nets[1].modules() if isinstance(m, kinds)]
        ctx.expect(
            not bad, f"the critic holds {bad}: want no sigmoid, no batch norm", name="critic: no sigmoid, no batch norm"
        )
        ctx.expect(all(abs(v) < 1e6 for v in ws), f"Wasserstein estimates {ws} not finite", name="training finite")

    def bench(self, ctx):
        cfg = ctx.configs[0]
        nets, ws = self._run(ctx, cfg)
        gan.steps_curve(ctx, "Wasserstein estimate", ws, x_label="G iteration", y_label="E f(x) - E f(G(z))")
        samples = gan.sample(nets[0], 512, cfg.z_dim, ctx.generator(2))
        gan.grid(ctx, "samples", samples[:64], f"64 samples after {cfg.iters} G iterations")
        ctx.metric("digits_fd", digits_fd(samples))
        ctx.metric("noise_fd", gan.noise_fd(ctx.generator(3)))
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        nets = gan.digits_pair(ctx.rng_seed, config, ctx.device, D_cls=self.critic_cls, betas=self.betas)
        G, C, _, opt_c = nets
        x, g = digits_images()[0].to(ctx.device), ctx.generator(5)
        real, z = x[: config.batch], torch.randn(config.batch, config.z_dim, device=ctx.device)
        if impl == "sample":
            return gan.sampling(G, z)
        if impl == "train_iter":
            return Prepared(fn=lambda: self.train_iter(nets, x, config, g), items=1, item_unit="iterations")
        gp = impl == "critic_step_gp"
        return Prepared(fn=lambda: self.critic_step(G, C, opt_c, real, z, gp=gp), items=1, item_unit="steps")
