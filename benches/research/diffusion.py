"""10.03 A diffusion model (DDPM) on handwritten digits.

Compared: Ho, Jain & Abbeel's DDPM ("Denoising diffusion probabilistic models", NeurIPS 2020)
with their linear schedule (beta 1e-4 to 0.02 over T = 1000) and the epsilon-prediction loss,
on sklearn's 1,797 real 8x8 digits with a small MLP denoiser (``models.diffusion``); sampled
with all 1000 steps and on a strided schedule of 50 (Nichol & Dhariwal 2021, Sec. 4).

Check: the betas are the linear schedule; ``q(x_t | x_0)`` and the posterior
(mean coefficients and variance beta~_t) equal diffusers' ``DDPMScheduler`` (``add_noise``,
``step`` with a shared noise generator; schedulers only, nothing downloaded) when diffusers is
installed, and always equal an independent derivation (the product of the two Gaussians
q(x_t | x_{t-1}) q(x_{t-1} | x_0), precision-weighted); the respaced schedule keeps abar at its
timesteps; the loss falls during a short training; both samplers return finite images.

Bench: training images/s, sampling time with 1000 and with 50 steps; the run records the loss,
a sample grid per sampler and the digits-feature FD (not comparable to published FID).

Lesson: the forward process has a closed form, so training draws one t per image and never
simulates the chain; sampling must walk it, which is why DDPM sampling costs T network calls
and why respacing (or DDIM) matters. Published figures: DDPM reaches FID 3.17 and Inception
score 9.46 on unconditional CIFAR-10 (Ho et al. 2020, Table 1) with a 35.7M-parameter U-Net and
1000 sampling steps; our FD uses digits-classifier features on 8x8 digits and is not comparable.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import speedup
from harness.gan_metric import LABEL, digits_fd, digits_images
from harness.mutants import Mutant
from models.diffusion import LinearSchedule, TinyDenoiser, sample


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """Denoiser width and training length."""

    width: int = 256
    """hidden units of the MLP denoiser"""
    batch: int = 128
    """images per training step"""
    steps: int = 150
    """training steps"""
    lr: float = 1e-3
    """Adam learning rate"""
    n_samples: int = 64
    """images per sampling call"""


class _NoSqrt(LinearSchedule):  # wrong: scales x_0 by abar_t, not sqrt(abar_t)
    def q_sample(self, x0, t, noise):
        return self._at(self.abar, t, x0) * x0 + self._at((1 - self.abar).sqrt(), t, x0) * noise


class _AlphaBarInCt(LinearSchedule):  # wrong: sqrt(abar_t) where the posterior needs sqrt(alpha_t)
    def posterior(self):
        c0, _, var = super().posterior()
        return c0, (1 - self.abar_prev) * self.abar.sqrt() / (1 - self.abar), var


@task("research.diffusion", seed="10.03", title="diffusion model (DDPM)")
class Diffusion(TrainingRun):
    __doc__ = __doc__
    variants = ("train_step", "sample_1000", "sample_50")
    sizes = {
        "tiny": DiffusionConfig(),
        "cpu": DiffusionConfig(steps=2000),
        "gpu": DiffusionConfig(width=1024, steps=20000),
    }
    metrics = {"digits_fd": LABEL + " (1000-step samples)", "digits_fd_50": LABEL + " (50-step samples)"}
    claims = (
        speedup("sample_50", over="sample_1000", at_least=10, text="50 strided steps sample >= 10x faster than 1000"),
    )
    schedule_cls = LinearSchedule
    mutants = (
        Mutant("q_sample_no_sqrt", "x_t = abar x_0 + ...", {"schedule_cls": _NoSqrt}, match="q(x_t | x_0)"),
        Mutant(
            "posterior_abar_for_alpha", "posterior ct uses abar_t", {"schedule_cls": _AlphaBarInCt}, match="posterior"
        ),
    )

    def _train(self, ctx, cfg, sched):
        torch.manual_seed(ctx.rng_seed)
        model = TinyDenoiser(width=cfg.width).to(ctx.device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        x, g = digits_images()[0].to(ctx.device), ctx.generator(1)

        def step(x0, t, noise):
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(sched.q_sample(x0, t, noise), t), noise)  # Algorithm 1
            loss.backward()
            opt.step()
            return loss.detach()

        losses = []
        for _ in range(cfg.steps):
            x0 = x[torch.randint(0, x.shape[0], (cfg.batch,), generator=g).to(ctx.device)]
            t = torch.randint(0, sched.T, (cfg.batch,), generator=g).to(ctx.device)
            losses.append(step(x0, t, torch.randn(x0.shape, generator=g).to(ctx.device)))
        return model, step, torch.stack(losses).cpu() if losses else torch.zeros(0)

    def check(self, ctx):
        cfg, s = ctx.configs[0], self.schedule_cls()
        ctx.assert_close(
            s.betas, torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), name="linear betas 1e-4..0.02, T=1000"
        )
        x0, noise = (torch.randn(6, 1, 8, 8, generator=ctx.generator(i), dtype=torch.float64) for i in (1, 2))
        t = torch.tensor([0, 1, 10, 250, 500, 999])
        # independent forms: x_t's mean and variance by multiplying out the chain one step at a time
        mean, var = x0.clone(), torch.zeros(6, 1, 1, 1, dtype=torch.float64)
        for k in range(1000):
            a = 1 - (1e-4 + (0.02 - 1e-4) * k / 999)
            upd = (torch.tensor(k) <= t).view(-1, 1, 1, 1)
            mean, var = torch.where(upd, mean * a**0.5, mean), torch.where(upd, var * a + (1 - a), var)
        ctx.assert_close(s.q_sample(x0, t, noise), mean + var.sqrt() * noise, name="q(x_t | x_0) closed form")
        c0, ct, pv = s.posterior()
        abp, al = s.abar_prev, s.alphas
        prec = al / s.betas + 1 / (1 - abp)  # Gaussian product: precisions add
        ctx.assert_close(pv[1:], (1 / prec)[1:], name="posterior variance (Gaussian product)")
        ctx.assert_close(
            ct[1:], ((1 / prec) * al.sqrt() / s.betas)[1:], name="posterior x_t coefficient (Gaussian product)"
        )
        ctx.assert_close(
            c0[1:], ((1 / prec) * abp.sqrt() / (1 - abp))[1:], name="posterior x_0 coefficient (Gaussian product)"
        )
        self._against_diffusers(ctx, s, x0, t, noise)
        r, ts = s.respaced(50)
        ctx.assert_close(r.abar, s.abar[ts], name="respaced schedule keeps abar")
        model, _, losses = self._train(ctx, cfg, s)
        first, last = float(losses[:30].mean()), float(losses[-30:].mean())
        ctx.expect(last < 0.8 * first, f"loss {first:.3f} -> {last:.3f}: did not fall by 20 %", name="loss falls")
        for steps in (1000, 50):
            out = sample(model, s, (8, 1, 8, 8), steps=steps, generator=ctx.generator(5), device=ctx.device)
            ctx.expect(
                bool(torch.isfinite(out).all()), f"{steps}-step sampler returned NaN/inf", name="samplers finite"
            )

    def _against_diffusers(self, ctx, s, x0, t, noise):
        if importlib.util.find_spec("diffusers") is None:
            ctx.skip_part("comparison with diffusers' DDPMScheduler", "diffusers not installed (pip install diffusers)")
            return
        from diffusers import DDPMScheduler

        ref = DDPMScheduler(1000, 1e-4, 0.02, "linear", variance_type="fixed_small", clip_sample=False)
        f = torch.float32  # diffusers keeps its schedule in float32
        ctx.assert_close(
            s.q_sample(x0.to(f), t, noise.to(f)),
            ref.add_noise(x0.to(f), noise.to(f), t),
            name="q(x_t | x_0) = diffusers add_noise",
        )
        xt, eps = s.q_sample(x0, t, noise).to(f), torch.randn(x0.shape, generator=ctx.generator(3)).to(f)
        c0, ct, pv = (v.to(f) for v in s.posterior())
        for i, tt in enumerate(t.tolist()):
            a = s.abar[tt].to(f)
            x0_hat = (xt[i : i + 1] - (1 - a).sqrt() * eps[i : i + 1]) / a.sqrt()
            z = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(tt))
            want = c0[tt] * x0_hat + ct[tt] * xt[i : i + 1] + (pv[tt].sqrt() * z if tt > 0 else 0)
            got = ref.step(eps[i : i + 1], tt, xt[i : i + 1], generator=torch.Generator().manual_seed(tt)).prev_sample
            ctx.assert_close(want, got, rtol=1e-4, atol=1e-4, name="posterior step = diffusers DDPMScheduler.step")

    def bench(self, ctx):
        cfg, s = ctx.configs[0], self.schedule_cls()
        model, _, losses = self._train(ctx, cfg, s)
        ctx.curve("training loss", list(range(1, len(losses) + 1)), losses.tolist(), y_label="MSE of predicted noise")
        for steps, key in ((1000, "digits_fd"), (50, "digits_fd_50")):
            out = sample(model, s, (256, 1, 8, 8), steps=steps, generator=ctx.generator(5), device=ctx.device)
            ctx.image(
                f"samples, {steps} steps",
                out[:64],
                nrow=8,
                vmin=-1,
                vmax=1,
                caption=f"64 samples, {steps} sampling steps",
            )
            ctx.metric(key, digits_fd(out))
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        s = self.schedule_cls()
        model, step, _ = self._train(ctx, dataclasses.replace(config, steps=0), s)
        if impl.startswith("sample"):
            n = int(impl.split("_")[1])
            fn = lambda: sample(model, s, (config.n_samples, 1, 8, 8), steps=n, device=ctx.device)  # noqa: E731
            return Prepared(fn=fn, items=config.n_samples, item_unit="samples")
        x0 = digits_images()[0][: config.batch].to(ctx.device)
        t = torch.randint(0, s.T, (config.batch,), generator=ctx.generator(2)).to(ctx.device)
        noise = torch.randn(x0.shape, generator=ctx.generator(3)).to(ctx.device)
        return Prepared(fn=lambda: step(x0, t, noise), items=config.batch, item_unit="images")
