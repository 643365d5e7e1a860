"""10.03 A diffusion model (DDPM) on handwritten digits.

Compared: Ho, Jain & Abbeel's DDPM ("Denoising diffusion probabilistic models", NeurIPS 2020)
with their linear schedule (beta 1e-4 to 0.02 over T = 1000) and the epsilon-prediction loss,
on sklearn's 1,797 real 8x8 digits with a small MLP denoiser (``models.diffusion``); sampled
with all 1000 steps and on a strided schedule of 50 (Nichol & Dhariwal 2021, Sec. 4).

Check: the linear betas; ``q(x_t | x_0)`` and the posterior (c0, ct, beta~_t) against independent
forms (the chain multiplied out step by step; the product of the Gaussians q(x_t | x_{t-1}) and
q(x_{t-1} | x_0), precision-weighted) and, when installed, diffusers' ``DDPMScheduler``
(``add_noise``, ``step`` with a shared noise generator; schedulers only, nothing downloaded);
respacing keeps abar; the loss falls; both samplers are finite. Bench: training images/s,
sampling time at 1000 and 50 steps, a sample grid per sampler and the digits-feature FD.

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

from harness import Prepared, TrainingRun, task
from harness.claims import speedup
from harness.gan_metric import LABEL, digits_fd, digits_images
from harness.mutants import Mutant
from kernels.vision.wrong import AbarInCt, NoSqrtSchedule
from models.diffusion import LinearSchedule, TinyDenoiser, sample, train_ddpm


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
        Mutant("q_sample_no_sqrt", "x_t = abar x_0 + ...", {"schedule_cls": NoSqrtSchedule}, match="q(x_t | x_0)"),
        Mutant("posterior_abar_for_alpha", "posterior ct uses abar_t", {"schedule_cls": AbarInCt}, match="posterior"),
    )

    def _train(self, ctx, cfg, sched):
        torch.manual_seed(ctx.rng_seed)
        model = TinyDenoiser(width=cfg.width).to(ctx.device)
        x, g = digits_images()[0].to(ctx.device), ctx.generator(1)  # x (1797, 1, 8, 8) in [-1, 1]
        return model, *train_ddpm(model, sched, x, steps=cfg.steps, batch=cfg.batch, lr=cfg.lr, generator=g)

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
        v = 1 / (al / s.betas + 1 / (1 - abp))  # Gaussian product: precisions add; t = 0 has no x_{t-1}
        ctx.assert_close(pv[1:], v[1:], name="posterior variance (Gaussian product)")
        ctx.assert_close(ct[1:], (v * al.sqrt() / s.betas)[1:], name="posterior x_t coefficient (Gaussian product)")
        ctx.assert_close(c0[1:], (v * abp.sqrt() / (1 - abp))[1:], name="posterior x_0 coefficient (Gaussian product)")
        self._against_diffusers(ctx, s, x0, t, noise)
        r, ts = s.respaced(50)
        ctx.assert_close(r.abar, s.abar[ts], name="respaced schedule keeps abar")
        model, _, losses = self._train(ctx, cfg, s)
        first, last = float(losses[:30].mean()), float(losses[-30:].mean())
        ctx.expect(last < 0.8 * first, f"loss {first:.3f} -> {last:.3f}: did not fall by 20 %", name="loss falls")
        for steps in (1000, 50):
            out = sample(model, s, (8, 1, 8, 8), steps=steps, generator=ctx.generator(5), device=ctx.device)
            ok = bool(torch.isfinite(out).all())
            ctx.expect(ok, f"{steps}-step sampler returned NaN/inf", name="samplers finite")

    def _against_diffusers(self, ctx, s, x0, t, noise):
        if importlib.util.find_spec("diffusers") is None:
            ctx.skip_part("comparison with diffusers' DDPMScheduler", "diffusers not installed (pip install diffusers)")
            return
        from diffusers import DDPMScheduler

        ref = DDPMScheduler(1000, 1e-4, 0.02, "linear", variance_type="fixed_small", clip_sample=False)
        f = torch.float32  # diffusers keeps its schedule in float32
        x0f, nf = x0.to(f), noise.to(f)
        ctx.assert_close(s.q_sample(x0f, t, nf), ref.add_noise(x0f, nf, t), name="q(x_t | x_0) = diffusers add_noise")
        xt, eps = s.q_sample(x0, t, noise).to(f), torch.randn(x0.shape, generator=ctx.generator(3)).to(f)
        c0, ct, pv = (v.to(f) for v in s.posterior())
        for i, tt in enumerate(t.tolist()):
            x, e, a = xt[i : i + 1], eps[i : i + 1], s.abar[tt].to(f)  # (1, 1, 8, 8), (1, 1, 8, 8), ()
            z = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(tt))  # the noise diffusers draws
            want = c0[tt] * (x - (1 - a).sqrt() * e) / a.sqrt() + ct[tt] * x + (pv[tt].sqrt() * z if tt > 0 else 0)
            got = ref.step(e, tt, x, generator=torch.Generator().manual_seed(tt)).prev_sample
            ctx.assert_close(want, got, rtol=1e-4, atol=1e-4, name="posterior step = diffusers DDPMScheduler.step")

    def bench(self, ctx):
        cfg, s = ctx.configs[0], self.schedule_cls()
        model, _, losses = self._train(ctx, cfg, s)
        ctx.curve("training loss", list(range(1, len(losses) + 1)), losses.tolist(), y_label="MSE of predicted noise")
        for steps, key in ((1000, "digits_fd"), (50, "digits_fd_50")):
            out = sample(model, s, (256, 1, 8, 8), steps=steps, generator=ctx.generator(5), device=ctx.device)
            caption = f"64 samples, {steps} sampling steps"
            ctx.image(f"samples, {steps} steps", out[:64], nrow=8, vmin=-1, vmax=1, caption=caption)
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
