"""7.05 CycleGAN: cycle and identity losses, the least-squares GAN loss, the image pool, PatchGAN.

Compared: Zhu, Park, Isola & Efros, "Unpaired image-to-image translation using cycle-consistent
adversarial networks" (ICCV 2017): G: A -> B and F: B -> A with two PatchGAN discriminators,
trained on unpaired images with ``L = L_lsgan(G, D_B) + L_lsgan(F, D_A) + lambda (|F(G(a)) - a|_1
+ |G(F(b)) - b|_1) + 0.5 lambda (|G(b) - b|_1 + |F(a) - a|_1)``, lambda = 10 (Sec. 4 and 7.1;
the identity term from Taigman et al. 2017), least-squares adversarial losses (Mao et al. 2017)
and a 50-image history for D, on 32x32 grey crops of scikit-image's brick and grass photos.

Check: a worked example (constant images, G(x) = x + 1, F(y) = y - 0.5) gives cycle loss 10
and identity loss 7.5; the LSGAN losses equal their formulas; the pool passes the first 50
images through, then answers about half the queries from history, keeps 50 images and returns
only images it was given; the PatchGAN is 70x70; the generator keeps the image shape.

Bench: one full step (both generators, both discriminators) in steps/s; a short run records
the cycle loss and brick patches, their translation and reconstruction.

Lesson: without paired data, the cycle term is what ties an output to its input; the identity
term keeps colours (here grey levels) from drifting, and the history pool shows D old fakes so
that G cannot win by oscillating. Zhu et al. report their results as AMT "real vs fake"
fooling rates and FCN scores on Cityscapes (Tables 1-2); no such anchor fits textures.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, TrainingRun, task
from harness import gan_train as gan
from harness.claims import metric
from harness.data.textures import texture_patches
from harness.mutants import Mutant
from kernels.gan import wrong
from models.image_gan import ImagePool, PatchGAN, ResnetGenerator


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
    lam, id_weight = 10.0, 0.5  # cycle weight lambda; identity weight as a fraction of lambda
    pool_cls = ImagePool
    mutants = (
        Mutant("identity_weight_1", "identity weighted lambda, not 0.5 lambda", {"id_weight": 1.0}, match="identity"),
        Mutant(
            "bce_adversarial",
            "cross-entropy instead of least squares",
            {"mse_gan": wrong.bce_gan},
            match="least-squares",
        ),
        Mutant("no_history", "the pool returns only new fakes", {"pool_cls": wrong.NoHistory}, match="pool"),
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
        pool, imgs = self.pool_cls(50, ctx.generator(1)), [torch.full((1, 1, 2, 2), float(k)) for k in range(150)]
        outs = [pool.query(i) for i in imgs]  # image k holds the value k
        held = [k for k in range(50) if not torch.equal(outs[k], imgs[k])]  # want none before the pool is full
        seen = [float(o[0, 0, 0, 0]) for o in outs]
        from_history, unknown = sum(v != k for k, v in enumerate(seen)), set(seen) - set(range(150))
        ctx.expect(
            not held and len(pool.images) == 50 and 25 <= from_history <= 75 and not unknown,
            f"image pool: new images held back {held}, {len(pool.images)} stored (want 50), {from_history} of 100 "
            f"queries after filling answered from history (want about 50), never-given images returned {unknown}",
            name="image pool",
        )
        gan.expect_70x70_patchgan(ctx, 1)
        cfg = ctx.configs[0]
        net, x = ResnetGenerator(1, cfg.width), torch.randn(2, 1, cfg.side, cfg.side, generator=ctx.generator(2))
        ctx.expect(net(x).shape == x.shape, "generator changes the image shape", name="generator shape")

    def _setup(self, ctx, cfg):
        torch.manual_seed(ctx.rng_seed)
        G, F = ResnetGenerator(1, cfg.width).to(ctx.device), ResnetGenerator(1, cfg.width).to(ctx.device)
        DA, DB = PatchGAN(1, cfg.width).to(ctx.device), PatchGAN(1, cfg.width).to(ctx.device)
        opt_g, opt_d = gan.adam(2e-4, G, F), gan.adam(2e-4, DA, DB)  # one Adam per side, as in the authors' code
        pool_a, pool_b = self.pool_cls(50, ctx.generator(3)), self.pool_cls(50, ctx.generator(4))

        def step(a, b):
            fb, fa = G(a), F(b)
            cyc = self.cycle_loss(G, F, a, b)
            adv = self.mse_gan(DB(fb), True) + self.mse_gan(DA(fa), True)  # both generators want "real"
            gan.descend(opt_g, adv + cyc + self.identity_loss(G, F, a, b))
            # each D sees the real images and fakes from its pool (history), halved as published
            loss_d = 0.5 * (self.mse_gan(DB(b), True) + self.mse_gan(DB(pool_b.query(fb)), False))
            gan.descend(opt_d, loss_d + 0.5 * (self.mse_gan(DA(a), True) + self.mse_gan(DA(pool_a.query(fa)), False)))
            return cyc.detach()

        return G, F, step

    def bench(self, ctx):
        if not gan.have(ctx, "skimage", "CycleGAN training on textures", pip="scikit-image"):
            return
        cfg = ctx.configs[0]
        A, B = (texture_patches(t, 256, cfg.side, seed=ctx.rng_seed + i) for i, t in enumerate(("brick", "grass")))
        A, B = A.to(ctx.device), B.to(ctx.device)  # (256, 1, side, side) each
        G, F, step = self._setup(ctx, cfg)
        g = ctx.generator(5)  # unpaired: independent rows of A and B, drawn alternately
        pairs = zip(gan.minibatches(g, cfg.steps, cfg.batch, A), gan.minibatches(g, cfg.steps, cfg.batch, B))
        cyc = [float(step(a, b)) for a, b in pairs]
        gan.steps_curve(ctx, "cycle loss", cyc, y_label="lambda x L1")
        ctx.metric("cycle_loss_ratio", sum(cyc[-10:]) / sum(cyc[:10]))
        with torch.no_grad():
            pics = torch.cat([A[:6], G(A[:6]), F(G(A[:6]))])  # rows: brick, brick -> grass, back to brick
        gan.grid(ctx, "brick -> grass -> brick", pics, "row 1 real brick, row 2 G(a), row 3 F(G(a))", nrow=6)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        _, _, step = self._setup(ctx, config)
        shape = (config.batch, 1, config.side, config.side)
        a = torch.randn(shape, generator=ctx.generator(6)).clamp(-1, 1).to(ctx.device)
        return Prepared(fn=lambda: step(a, a.flip(-1)), items=1, item_unit="steps")
