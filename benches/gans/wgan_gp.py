"""7.04 WGAN with gradient penalty.

Compared: Gulrajani et al.'s WGAN-GP ("Improved training of Wasserstein GANs", NeurIPS 2017,
Algorithm 1): a critic f (no sigmoid: it outputs a score, not a probability) maximises
``E f(x) - E f(G(z))``; instead of clipping weights, the loss adds
``lambda * E (||grad f(x_hat)||_2 - 1)^2`` at ``x_hat = eps x + (1 - eps) G(z)``, one
``eps ~ U[0, 1]`` per sample, with lambda = 10 and n_critic = 5 critic steps per G step,
Adam(1e-4, betas (0, 0.9)). Trained here on sklearn's real 8x8 digits with MLP nets.

Check: for a linear critic f(x) = w.x + b the penalty equals its closed form
lambda (||w|| - 1)^2, and its gradient with respect to w equals 2 lambda (||w|| - 1) w / ||w||
(it exists only if the input gradient was taken with ``create_graph=True``); the
interpolation weights differ per sample; the critic holds no sigmoid and no batch norm
(the penalty is per sample, and batch norm mixes samples: Sec. 4); lambda = 10, n_critic = 5;
a few training iterations stay finite.

Bench: one critic step with and without the penalty (what the double backward costs), a full
iteration (5 critic steps + 1 G step) and samples/s; a training run records the critic's
Wasserstein estimate, a sample grid and the digits-feature FD (not comparable to published FID).

Lesson: the penalty is a gradient of a gradient: ``torch.autograd.grad(..., create_graph=True)``
keeps the graph of the input gradient so that the penalty itself can be differentiated; with
``create_graph=False`` the term is a constant and the critic is unconstrained. Published figure
for scale: 7.86 Inception score on unsupervised CIFAR-10 with a ResNet (Gulrajani et al.
Table 3), against 6.16 for DCGAN in the same table; not comparable with our digits FD.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness import Prepared, TrainingRun, task
from harness.claims import time_ratio
from harness.gan_metric import LABEL, digits_fd, digits_images
from harness.mutants import Mutant
from models.gan import GanConfig, MLPDiscriminator, MLPGenerator


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


class _BNCritic(MLPDiscriminator):  # wrong: batch norm in the critic
    def __init__(self, cfg):
        super().__init__(cfg)
        self.net.insert(1, nn.BatchNorm1d(cfg.width))


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
    critic_cls = MLPDiscriminator
    mutants = (
        Mutant(
            "no_create_graph",
            "input gradient taken with create_graph=False",
            {"create_graph": False},
            match="create_graph",
        ),
        Mutant(
            "one_eps_per_batch",
            "one interpolation weight for the whole batch",
            {"eps_shape": lambda self, n: (1, 1, 1, 1)},
            match="per sample",
        ),
        Mutant("bn_critic", "batch norm in the critic", {"critic_cls": _BNCritic}, match="batch norm"),
    )

    def eps_shape(self, n):
        return (n, 1, 1, 1)  # one weight per sample, broadcast over (C, H, W)

    def penalty(self, critic, real, fake, g=None):
        """(lambda E (||grad_x_hat f|| - 1)^2, eps (N, 1, 1, 1)); real, fake (N, C, H, W)."""
        eps = torch.rand(self.eps_shape(real.shape[0]), generator=g).to(real).expand(real.shape[0], 1, 1, 1)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=self.create_graph)
        return self.lam * (grad.flatten(1).norm(dim=1) - 1).square().mean(), eps

    def _build(self, cfg, device):
        gc = GanConfig(size=8, z_dim=cfg.z_dim, width=cfg.width)
        G, C = MLPGenerator(gc).to(device), self.critic_cls(gc).to(device)
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.9))
        opt_c = torch.optim.Adam(C.parameters(), lr=cfg.lr, betas=(0.0, 0.9))
        return G, C, opt_g, opt_c

    def critic_step(self, G, C, opt_c, real, z, gp=True):
        fake = G(z).detach()
        opt_c.zero_grad(set_to_none=True)
        w_est = C(real).mean() - C(fake).mean()  # the critic's Wasserstein estimate
        loss = -w_est + (self.penalty(C, real, fake)[0] if gp else 0.0)
        loss.backward()
        opt_c.step()
        return w_est.detach()

    def train_iter(self, G, C, opt_g, opt_c, x, cfg, g):
        for _ in range(self.n_critic):
            real = x[torch.randint(0, x.shape[0], (cfg.batch,), generator=g).to(x.device)]
            w = self.critic_step(G, C, opt_c, real, torch.randn(cfg.batch, cfg.z_dim, device=x.device))
        opt_g.zero_grad(set_to_none=True)
        (-C(G(torch.randn(cfg.batch, cfg.z_dim, device=x.device))).mean()).backward()
        opt_g.step()
        return w

    def check(self, ctx):
        cfg = ctx.configs[0]
        ctx.expect(
            self.lam == 10 and self.n_critic == 5,
            f"lambda {self.lam}, n_critic {self.n_critic}: want 10, 5",
            name="lambda 10, n_critic 5",
        )
        lin = nn.Sequential(nn.Flatten(), nn.Linear(64, 1)).double()
        real, fake = (torch.randn(16, 1, 8, 8, generator=ctx.generator(i), dtype=torch.float64) for i in (1, 2))
        pen, eps = self.penalty(lin, real, fake, g=ctx.generator(3))
        w = lin[1].weight
        want = self.lam * (w.norm() - 1) ** 2
        ctx.assert_close(pen.detach(), want.detach(), name="penalty = lambda (||w|| - 1)^2")
        ctx.expect(
            pen.requires_grad,
            "the penalty has no graph: the input gradient needs create_graph=True",
            name="penalty differentiable (create_graph)",
        )
        (dw,) = torch.autograd.grad(pen, w)
        ctx.assert_close(dw, (2 * self.lam * (w.norm() - 1) * w / w.norm()).detach(), name="d penalty / dw")
        ctx.expect(
            eps.flatten().unique().numel() == real.shape[0],
            f"{eps.flatten().unique().numel()} interpolation weights for {real.shape[0]} samples: want one per sample",
            name="interpolation per sample",
        )
        torch.manual_seed(ctx.rng_seed)
        G, C, opt_g, opt_c = self._build(cfg, ctx.device)
        bad = [type(m).__name__ for m in C.modules() if isinstance(m, (nn.Sigmoid, nn.modules.batchnorm._BatchNorm))]
        ctx.expect(
            not bad,
            f"the critic holds {bad}: want no sigmoid (a score) and no batch norm (per-sample penalty)",
            name="critic: no sigmoid, no batch norm",
        )
        x, g = digits_images()[0].to(ctx.device), ctx.generator(4)
        ws = [float(self.train_iter(G, C, opt_g, opt_c, x, cfg, g)) for _ in range(cfg.iters)]
        ctx.expect(
            all(map(lambda v: abs(v) < 1e6, ws)), f"Wasserstein estimates {ws} not finite", name="training finite"
        )

    def bench(self, ctx):
        cfg = ctx.configs[0]
        torch.manual_seed(ctx.rng_seed)
        G, C, opt_g, opt_c = self._build(cfg, ctx.device)
        x, g = digits_images()[0].to(ctx.device), ctx.generator(4)
        ws = [float(self.train_iter(G, C, opt_g, opt_c, x, cfg, g)) for _ in range(cfg.iters)]
        ctx.curve(
            "Wasserstein estimate",
            list(range(1, cfg.iters + 1)),
            ws,
            x_label="G iteration",
            y_label="E f(x) - E f(G(z))",
        )
        with torch.no_grad():
            samples = G(torch.randn(512, cfg.z_dim, generator=ctx.generator(2)).to(ctx.device))
        ctx.image(
            "samples", samples[:64], nrow=8, vmin=-1, vmax=1, caption=f"64 samples after {cfg.iters} G iterations"
        )
        ctx.metric("digits_fd", digits_fd(samples))
        ctx.metric("noise_fd", digits_fd(torch.rand(512, 1, 8, 8, generator=ctx.generator(3)) * 2 - 1))
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        torch.manual_seed(ctx.rng_seed)
        G, C, opt_g, opt_c = self._build(config, ctx.device)
        x = digits_images()[0].to(ctx.device)
        real, z = x[: config.batch], torch.randn(config.batch, config.z_dim, device=ctx.device)
        if impl == "sample":
            return Prepared(fn=torch.no_grad()(lambda: G(z)), items=config.batch, item_unit="samples")
        if impl == "train_iter":
            g = ctx.generator(5)
            return Prepared(
                fn=lambda: self.train_iter(G, C, opt_g, opt_c, x, config, g), items=1, item_unit="iterations"
            )
        gp = impl == "critic_step_gp"
        return Prepared(fn=lambda: self.critic_step(G, C, opt_c, real, z, gp=gp), items=1, item_unit="steps")
