"""10.09 Neural style transfer (Gatys et al.) on random multi-scale features.

Compared: the image optimisation of Gatys, Ecker & Bethge ("Image style transfer using
convolutional neural networks", CVPR 2016): an image x is optimised so that its features match
a content image's features (content loss) and its Gram matrices match a style image's (style
loss), with Adam against L-BFGS (the optimiser they used). Pretrained VGG-19 weights cannot be
had offline, so the features come from a fixed *random* multi-scale conv net (Ustyuzhaninov et
al. 2016, "Texture synthesis using shallow convolutional networks with random filters", show
random filters already synthesise textures); they are labelled so, not VGG features. Images
(``harness.data.style_images``): china.jpg (content), a brick texture (style), grey, 64x64.

Check: the Gram matrix equals F F^T / (C H W) computed with explicit loops over channel pairs;
the content loss is the mean squared feature difference and the style loss the sum over layers of
mean squared Gram differences, on worked tensors; the combined loss falls under both optimisers.
Bench: iterations/s (an L-BFGS step evaluates the loss up to 5 times), loss curves, the images.

Lesson: style is second-order statistics of features, content is the features themselves;
L-BFGS reaches a lower loss per iteration on this smooth, deterministic, full-batch problem,
which is why Gatys et al. used it. Johnson et al. 2016 ("Perceptual losses") trained a
feed-forward network to do the same in one pass, about three orders of magnitude faster than
the optimisation (their Table 1, 256x256, Gatys with L-BFGS vs their network on a GPU).
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import metric
from harness.data.style_images import style_images
from harness.mutants import Mutant
from kernels.vision.random_features import multiscale_features, random_features_net
from kernels.vision.wrong import gram_unnormalised, style_on_features


@dataclasses.dataclass(frozen=True)
class StyleConfig:
    """Image size, feature net and optimisation length."""

    side: int = 64
    """image side in pixels"""
    width: int = 32
    """channels of each random conv layer"""
    iters: int = 20
    """optimiser steps"""
    style_weight: float = 1e3
    """weight of the style loss against the content loss"""


@task("research.style_transfer", seed="10.09", title="neural style transfer")
class StyleTransfer(Comparison):
    __doc__ = __doc__
    variants = ("adam", "lbfgs")
    sizes = {
        "tiny": StyleConfig(side=32, iters=8),
        "cpu": StyleConfig(iters=30),
        "gpu": StyleConfig(side=256, width=64, iters=200),
    }
    metrics = {
        "adam_final_loss": "combined loss after the Adam run",
        "lbfgs_final_loss": "combined loss after the L-BFGS run",
        "lbfgs_over_adam": "lbfgs_final_loss / adam_final_loss at equal steps",
    }
    claims = (metric("lbfgs_over_adam", "<", 1.0, text="L-BFGS ends lower than Adam after the same number of steps"),)
    mutants = (
        Mutant("gram_unnormalised", "Gram without 1/(C H W)", {"gram": staticmethod(gram_unnormalised)}, match="Gram"),
        Mutant(
            "style_on_features",
            "style loss compares features, not Grams",
            {"style_loss": style_on_features},
            match="style loss",
        ),
    )

    @staticmethod
    def gram(f):
        """(N, C, H, W) -> (N, C, C): F F^T / (C H W)."""
        n, c, h, w = f.shape
        flat = f.reshape(n, c, h * w)  # (N, C, HW)
        return flat @ flat.transpose(1, 2) / (c * h * w)

    def content_loss(self, f, t):
        return F.mse_loss(f, t)

    def style_loss(self, fs, ts):
        return sum(F.mse_loss(self.gram(a), self.gram(b)) for a, b in zip(fs, ts))

    def _run(self, cfg, which, iters):
        net = random_features_net(cfg.width)  # 3 layers, one scale each
        content, style = style_images(cfg.side)
        t_content = multiscale_features(net, content)[-1].detach()  # content: the deepest layer only
        t_style = [f.detach() for f in multiscale_features(net, style)]  # style: every scale
        x = content.clone().requires_grad_(True)

        def loss_fn():
            fs = multiscale_features(net, x)
            # x 1e4: the raw loss is ~1e-4, below L-BFGS's default gradient tolerance (1e-7)
            return 1e4 * (self.content_loss(fs[-1], t_content) + cfg.style_weight * self.style_loss(fs, t_style))

        opt = torch.optim.Adam([x], lr=0.01) if which == "adam" else torch.optim.LBFGS([x], max_iter=5)

        def step():
            def closure():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn()
                loss.backward()
                return loss

            opt.step(closure)
            return float(loss_fn().detach())

        return x, [float(loss_fn().detach())] + [step() for _ in range(iters)], step

    def check(self, ctx):
        cfg = ctx.configs[0]
        f = torch.randn(2, 3, 4, 5, generator=ctx.generator(), dtype=torch.float64)
        want = torch.empty(2, 3, 3, dtype=torch.float64)
        for n, i, j in itertools.product(range(2), range(3), range(3)):  # (N, C, C)
            want[n, i, j] = (f[n, i] * f[n, j]).sum() / (3 * 4 * 5)
        ctx.assert_close(self.gram(f), want, name="Gram matrix = F F^T / (C H W)")
        a, b = f[:1], f[1:]
        ctx.assert_close(self.content_loss(a, b), ((a - b) ** 2).sum() / a.numel(), name="content loss")
        style = 2 * ((want[0] - want[1]) ** 2).sum() / 9  # two layers, each with the Grams of a and b
        ctx.assert_close(torch.as_tensor(self.style_loss([a, a], [b, b])), style, name="style loss")
        for which in self.variants:
            _, losses, _ = self._run(cfg, which, cfg.iters)
            msg = f"{which}: loss {losses[0]:.4g} -> {losses[-1]:.4g}, not down 20 %"
            ctx.expect(losses[-1] < 0.8 * losses[0], msg, name="combined loss falls")

    def bench(self, ctx):
        cfg = ctx.configs[0]
        finals, pics = {}, list(style_images(cfg.side))  # 4 pictures (1, 1, side, side): content, style, results
        for which in self.variants:
            x, losses, _ = self._run(cfg, which, cfg.iters)
            ctx.curve("combined loss", range(len(losses)), losses, series=which, x_label="optimiser step", log_y=True)
            finals[which] = losses[-1]
            ctx.metric(f"{which}_final_loss", losses[-1])
            pics.append(x.detach().clamp(0, 1))
        ctx.metric("lbfgs_over_adam", finals["lbfgs"] / finals["adam"])
        caption = "random multi-scale conv features (not VGG): content china.jpg, style brick texture"
        ctx.image("content, style, Adam, L-BFGS", torch.cat(pics), nrow=4, vmin=0, vmax=1, caption=caption)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        _, _, step = self._run(config, impl, 0)
        return Prepared(fn=step, items=1, item_unit="iterations")
