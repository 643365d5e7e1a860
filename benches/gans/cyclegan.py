"""7.05 CycleGAN: cycle and identity losses, the least-squares GAN loss, the image pool, PatchGAN.

Compared: Zhu, Park, Isola & Efros, "Unpaired image-to-image translation using cycle-consistent
adversarial networks" (ICCV 2017): two generators G: A -> B and F: B -> A, two PatchGAN
discriminators, trained on unpaired images with
``L = L_lsgan(G, D_B) + L_lsgan(F, D_A) + lambda (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)
+ 0.5 lambda (|G(b) - b|_1 + |F(a) - a|_1)``, lambda = 10 (Sec. 4 and 7.1; the identity term
from Taigman et al. 2017), least-squares adversarial losses (Mao et al. 2017) and a 50-image
history for D. The domains here are real texture photos shipped with scikit-image (brick and
grass; real photos, not CIFAR), 32x32 grey crops.

Check: on a worked example (constant images, G(x) = x + 1, F(y) = y - 0.5) the cycle loss is
10 and the identity loss 7.5, as computed by hand; the LSGAN losses equal their formulas; the
pool passes the first 50 images through, then returns history for about half the queries,
keeps at most 50 detached images and only ever returns images it was given; a 70x70 PatchGAN
maps 256x256 to 30x30 logits and the generator keeps the image shape.

Bench: one full CycleGAN step (both generators, both discriminators) in steps/s; a short run
records the losses and a picture of brick patches, their translation and reconstruction.

Lesson: without paired data, the cycle term is what ties an output to its input; the identity
term keeps colours (here grey levels) from drifting, and the history pool shows D old fakes so
that G cannot win by oscillating. Zhu et al. report their results as AMT "real vs fake"
fooling rates and FCN scores on Cityscapes (Tables 1-2); no such anchor fits textures.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools

import torch

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.mutants import Mutant
from models.image_gan import ImagePool, PatchGAN, ResnetGenerator, receptive_field


@dataclasses.dataclass(frozen=True)
class CycleConfig:
    """Network widths, patch size and training length."""

    width: int = 8
    """generator width (published: 64) and PatchGAN width (published: 64)"""
    side: int = 32
    """patch side in pixels"""
    batch: int = 4
    """patches per domain per step (published: 1)"""
    steps: int = 40
    """training steps of the bench's run"""


def _bce_gan(self, logits, real):  # wrong: the original cross-entropy GAN loss
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


class _NoHistory(ImagePool):  # wrong: always returns the newest fakes
    def query(self, batch):
        super().query(batch)
        return batch.detach()


@task("gans.cyclegan", seed="7.05", title="CycleGAN")
class CycleGan(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": CycleConfig(),
        "cpu": CycleConfig(steps=60),
        "gpu": CycleConfig(width=64, side=128, batch=1, steps=500),
    }
    metrics = {"cycle_loss_ratio": "cycle loss over the last 10 steps / over the first 10 steps"}
    claims = (metric("cycle_loss_ratio", "<=", 0.8, text="the cycle loss falls by >= 20 % over the short run"),)
    lam = 10.0
    id_weight = 0.5
    pool_cls = ImagePool
    mutants = (
        Mutant(
            "identity_weight_1", "identity term weighted lambda, not 0.5 lambda", {"id_weight": 1.0}, match="identity"
        ),
        Mutant(
            "bce_adversarial", "cross-entropy instead of least squares", {"mse_gan": _bce_gan}, match="least-squares"
        ),
        Mutant("no_history", "the pool returns only new fakes", {"pool_cls": _NoHistory}, match="pool"),
    )

    def mse_gan(self, logits, real):
        """Least-squares GAN loss: mean (D - 1)^2 for real targets, mean D^2 for fake ones."""
        return (logits - float(real)).square().mean()

    def cycle_loss(self, G, F, a, b):
        return self.lam * ((F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean())

    def identity_loss(self, G, F, a, b):
        return self.id_weight * self.lam * ((G(b) - b).abs().mean() + (F(a) - a).abs().mean())

    def check(self, ctx):
        a, b = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
        G, F = (lambda x: x + 1), (lambda y: y - 0.5)
        ctx.assert_close(self.cycle_loss(G, F, a, b), torch.tensor(10.0), name="cycle loss (worked example)")
        ctx.assert_close(self.identity_loss(G, F, a, b), torch.tensor(7.5), name="identity loss (worked example)")
        d = torch.tensor([0.5, -1.0, 2.0])
        ctx.assert_close(self.mse_gan(d, True), ((d - 1) ** 2).mean(), name="least-squares GAN loss (real)")
        ctx.assert_close(self.mse_gan(d, False), (d**2).mean(), name="least-squares GAN loss (fake)")
        pool, seen, from_history = self.pool_cls(50, ctx.generator(1)), [], 0
        for k in range(150):
            img = torch.full((1, 1, 2, 2), float(k))
            out = pool.query(img)
            if k < 50:
                ctx.expect(
                    torch.equal(out, img), f"query {k}: the pool did not pass a new image through", name="image pool"
                )
            from_history += int(float(out[0, 0, 0, 0]) != k)
            seen.append(float(out[0, 0, 0, 0]))
        ctx.expect(len(pool.images) == 50, f"pool holds {len(pool.images)} images, want 50", name="image pool")
        ctx.expect(
            25 <= from_history <= 75,
            f"image pool: {from_history} of 100 queries after filling came from history, want about 50",
            name="image pool",
        )
        ctx.expect(
            set(seen) <= set(map(float, range(150))), "the pool returned an image it was never given", name="image pool"
        )
        D = PatchGAN(1, 64)
        out_side = D(torch.zeros(1, 1, 256, 256)).shape[-1]
        ctx.expect(
            out_side == 30 and receptive_field(D) == 70,
            f"PatchGAN: {out_side}x{out_side} map, field {receptive_field(D)}",
            name="70x70 PatchGAN",
        )
        cfg = ctx.configs[0]
        x = torch.randn(2, 1, cfg.side, cfg.side, generator=ctx.generator(2))
        ctx.expect(
            ResnetGenerator(1, cfg.width)(x).shape == x.shape,
            "generator changes the image shape",
            name="generator shape",
        )

    def _setup(self, ctx, cfg):
        torch.manual_seed(ctx.rng_seed)
        G, F = ResnetGenerator(1, cfg.width).to(ctx.device), ResnetGenerator(1, cfg.width).to(ctx.device)
        DA, DB = PatchGAN(1, cfg.width).to(ctx.device), PatchGAN(1, cfg.width).to(ctx.device)
        opt_g = torch.optim.Adam(itertools.chain(G.parameters(), F.parameters()), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(itertools.chain(DA.parameters(), DB.parameters()), lr=2e-4, betas=(0.5, 0.999))
        pool_a, pool_b = self.pool_cls(50, ctx.generator(3)), self.pool_cls(50, ctx.generator(4))

        def step(a, b):
            opt_g.zero_grad(set_to_none=True)
            fb, fa = G(a), F(b)
            cyc = self.cycle_loss(G, F, a, b)
            loss_g = self.mse_gan(DB(fb), True) + self.mse_gan(DA(fa), True) + cyc + self.identity_loss(G, F, a, b)
            loss_g.backward()
            opt_g.step()
            opt_d.zero_grad(set_to_none=True)
            loss_d = 0.5 * (self.mse_gan(DB(b), True) + self.mse_gan(DB(pool_b.query(fb)), False))
            loss_d = loss_d + 0.5 * (self.mse_gan(DA(a), True) + self.mse_gan(DA(pool_a.query(fa)), False))
            loss_d.backward()
            opt_d.step()
            return cyc.detach()

        return G, F, step

    def _domains(self, ctx, cfg, n):
        from harness.data.textures import texture_patches

        return (
            texture_patches(t, n, cfg.side, seed=ctx.rng_seed + i).to(ctx.device)
            for i, t in enumerate(("brick", "grass"))
        )

    def bench(self, ctx):
        if importlib.util.find_spec("skimage") is None:
            ctx.skip_part("CycleGAN training on textures", "needs scikit-image (pip install scikit-image)")
            return
        cfg = ctx.configs[0]
        A, B = self._domains(ctx, cfg, 256)
        G, F, step = self._setup(ctx, cfg)
        g, cyc = ctx.generator(5), []
        for _ in range(cfg.steps):
            i, j = (torch.randint(0, 256, (cfg.batch,), generator=g).to(ctx.device) for _ in range(2))
            cyc.append(float(step(A[i], B[j])))
        ctx.curve("cycle loss", list(range(1, cfg.steps + 1)), cyc, y_label="lambda x L1")
        ctx.metric("cycle_loss_ratio", sum(cyc[-10:]) / sum(cyc[:10]))
        with torch.no_grad():
            a = A[:6]
            pics = torch.cat([a, G(a), F(G(a))])  # rows: brick, brick -> grass, back to brick
        ctx.image(
            "brick -> grass -> brick",
            pics,
            nrow=6,
            vmin=-1,
            vmax=1,
            caption="row 1 real brick, row 2 G(a), row 3 F(G(a))",
        )
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        _, _, step = self._setup(ctx, config)
        a = (
            torch.randn(config.batch, 1, config.side, config.side, generator=ctx.generator(6))
            .clamp(-1, 1)
            .to(ctx.device)
        )
        return Prepared(fn=lambda: step(a, a.flip(-1)), items=1, item_unit="steps")
