"""7.09 Progressive growing: the fade-in, the resolution schedule, minibatch stddev, pixel norm.

Compared: the generator of Karras et al., "Progressive growing of GANs for improved quality,
stability, and variation" (ICLR 2018), from ``models.progan``: it starts at 4x4 and doubles the
resolution stage by stage; each new block fades in, its output blended with the nearest-
upsampled output of the previous resolution by a weight alpha that rises linearly from 0 to 1.

Check: at alpha = 0, 0.3 and 1 the generator's output equals
``(1 - alpha) * up(to_rgb_old(h)) + alpha * to_rgb_new(block(up(h)))`` computed from its parts,
and at alpha = 0 it equals the previous stage's image upsampled (the new block enters
invisibly); alpha follows step / fade_steps clamped to [0, 1]; the resolutions run 4, 8, 16, 32;
the minibatch-stddev channel equals a hand computation (std over each group of samples,
averaged over features and pixels); pixel norm gives every pixel's feature vector unit RMS.

Bench: a generator forward pass while a stage fades in (both paths) against a stable one, at
each resolution; a picture shows one z through the fade of the last stage.

Lesson: growing lets the networks learn coarse structure before detail, and the fade keeps a
new layer from shocking the well-trained smaller ones; the blend costs only an extra 1x1
convolution and an upsample. Published figure: ProGAN reaches an Inception score of 8.80 on
unsupervised CIFAR-10 (Karras et al. 2018, Table 3) against 7.86 for WGAN-GP in the same table;
nothing is trained here, so nothing of ours is comparable.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import time_ratio
from harness.mutants import Mutant
from models.progan import PixelNorm, ProGenerator, alpha_at, minibatch_stddev


@dataclasses.dataclass(frozen=True)
class ProConfig:
    """Generator size and the stage timed."""

    width: int = 16
    """channels of every block"""
    stage: int = 3
    """stage timed (resolution 4 * 2^stage)"""
    batch: int = 16
    """samples per forward pass"""
    fade_steps: int = 100
    """steps over which alpha rises from 0 to 1"""

    def label(self) -> str:
        return f"{4 * 2**self.stage}px"


class _ReversedFade(ProGenerator):  # wrong: the weights of old and new are swapped
    def forward(self, z, stage, alpha=1.0):
        return super().forward(z, stage, 1 - alpha if 0 < stage and alpha < 1 else alpha)


def _mbstd_over_channels(x, group=4):  # wrong: std over channels of each sample, not over the group
    stat = x.std(dim=1, keepdim=True).mean(dim=(1, 2, 3), keepdim=True).expand(-1, 1, *x.shape[2:])
    return torch.cat([x, stat], dim=1)


@task("gans.progressive_gan", seed="7.09", title="progressive growing GAN")
class ProgressiveGan(TrainingRun):
    __doc__ = __doc__
    variants = ("stable", "fading")
    sizes = {
        "tiny": ProConfig(width=8),
        "cpu": [ProConfig(stage=s) for s in range(4)],
        "gpu": [ProConfig(width=512, stage=s, batch=64) for s in range(4)],  # the paper's 512 channels
    }
    claims = (time_ratio("fading", to="stable", at_most=1.5, text="a fading stage costs <= 1.5x a stable one at 32px"),)
    generator_cls = ProGenerator
    mbstd = staticmethod(minibatch_stddev)
    alpha_fn = staticmethod(alpha_at)
    mutants = (
        Mutant("reversed_fade", "alpha weights the old path", {"generator_cls": _ReversedFade}, match="fade-in"),
        Mutant(
            "mbstd_over_channels",
            "stddev over channels, not samples",
            {"mbstd": staticmethod(_mbstd_over_channels)},
            match="minibatch",
        ),
        Mutant(
            "alpha_twice_as_fast",
            "alpha reaches 1 halfway",
            {"alpha_fn": staticmethod(lambda s, n: min(1.0, 2 * s / n))},
            match="alpha",
        ),
    )

    def check(self, ctx):
        cfg = ctx.configs[0]
        torch.manual_seed(ctx.rng_seed)
        G = self.generator_cls(z_dim=16, width=cfg.width, stages=3)
        z = torch.randn(4, 16, generator=ctx.generator())
        ctx.expect(G.resolutions() == [4, 8, 16, 32], f"resolutions {G.resolutions()}", name="resolution sequence")
        with torch.no_grad():
            for stage in (1, 2, 3):
                h = G.features(z, stage - 1)
                up = F.interpolate(h, scale_factor=2, mode="nearest")
                old = F.interpolate(G.to_rgb[stage - 1](h), scale_factor=2, mode="nearest")
                new = G.to_rgb[stage](G.blocks[stage - 1](up))
                for a in (0.0, 0.3, 1.0):
                    ctx.assert_close(
                        G(z, stage, a), (1 - a) * old + a * new, name="fade-in blend", where=f"stage {stage}, alpha {a}"
                    )
                prev = F.interpolate(G(z, stage - 1, 1.0), scale_factor=2, mode="nearest")
                ctx.assert_close(G(z, stage, 0.0), prev, name="fade-in: alpha 0 = previous stage upsampled")
        n = cfg.fade_steps
        got = [self.alpha_fn(s, n) for s in (0, n // 4, n // 2, n, 2 * n)]
        ctx.expect(got == [0.0, (n // 4) / n, (n // 2) / n, 1.0, 1.0], f"alpha schedule {got}", name="alpha schedule")
        x = torch.randn(8, 3, 4, 4, generator=ctx.generator(1))
        out = self.mbstd(x, 4)
        want = torch.empty(8)
        for i in range(8):  # sample i sits in group slot i % 2 (view (4, 2, ...)): its group is i % 2, i % 2 + 2, ...
            grp = x[i % 2 :: 2]
            want[i] = ((grp - grp.mean(0)).square().mean(0) + 1e-8).sqrt().mean()
        ctx.expect(out.shape == (8, 4, 4, 4), f"minibatch stddev output {tuple(out.shape)}", name="minibatch stddev")
        ctx.assert_close(out[:, 3, 0, 0], want, name="minibatch stddev channel")
        ctx.assert_close(out[:, :3], x, name="minibatch stddev keeps the features")
        rms = PixelNorm()(x * 7).square().mean(1).sqrt()
        ctx.assert_close(rms, torch.ones_like(rms), name="pixel norm: unit RMS per pixel")

    def bench(self, ctx):
        torch.manual_seed(ctx.rng_seed)
        G = self.generator_cls(z_dim=16, width=8, stages=3)
        z = torch.randn(1, 16, generator=ctx.generator())
        with torch.no_grad():
            frames = [F.interpolate(G(z, 3, a), size=(32, 32), mode="nearest") for a in (0, 0.25, 0.5, 0.75, 1.0)]
        ctx.image(
            "fade-in of the 32px stage",
            torch.cat(frames),
            nrow=5,
            caption="one z, alpha = 0, 0.25, 0.5, 0.75, 1 (untrained G)",
        )
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        torch.manual_seed(ctx.rng_seed)
        G = self.generator_cls(z_dim=16, width=config.width, stages=3).to(ctx.device)
        z = torch.randn(config.batch, 16, device=ctx.device)
        alpha = 0.5 if impl == "fading" and config.stage > 0 else 1.0
        return Prepared(fn=torch.no_grad()(lambda: G(z, config.stage, alpha)), items=config.batch, item_unit="samples")
