"""10.09 Neural style transfer (Gatys et al.) on random multi-scale features.

Compared: the image optimisation of Gatys, Ecker & Bethge ("Image style transfer using
convolutional neural networks", CVPR 2016): an image x is optimised so that its features match
a content image's features (content loss) and its Gram matrices match a style image's (style
loss), with Adam against L-BFGS (the optimiser they used). Pretrained VGG-19 weights cannot be
had offline, so the features come from a fixed *random* multi-scale conv net (Ustyuzhaninov et
al. 2016, "Texture synthesis using shallow convolutional networks with random filters", show
random filters already synthesise textures); they are labelled so, not VGG features. Images:
a crop of sklearn's china.jpg (content) and a scikit-image brick texture, or flower.jpg when
scikit-image is absent (style), grey, 64x64.

Check: the Gram matrix equals F F^T / (C H W) computed with explicit loops over channel pairs;
the content loss equals the mean squared feature difference and the style loss the sum over
layers of mean squared Gram differences, on worked tensors; the combined loss falls under
both optimisers.

Bench: optimisation iterations per second for Adam and L-BFGS (an L-BFGS step re-evaluates the
loss up to ``max_iter`` times); the run records both loss curves and the stylised images.

Lesson: style is second-order statistics of features, content is the features themselves;
L-BFGS reaches a lower loss per iteration on this smooth, deterministic, full-batch problem,
which is why Gatys et al. used it. Johnson et al. 2016 ("Perceptual losses") trained a
feed-forward network to do the same in one pass, about three orders of magnitude faster than
the optimisation (their Table 1, 256x256, Gatys with L-BFGS vs their network on a GPU).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from harness.claims import metric
from harness.mutants import Mutant


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


def _features_net(width: int) -> nn.ModuleList:
    g = torch.Generator().manual_seed(1234)  # fixed random filters: the same features on every run
    layers = nn.ModuleList()
    cin = 1
    for _ in range(3):
        conv = nn.Conv2d(cin, width, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / (cin * 9) ** 0.5)
            conv.bias.zero_()
        layers.append(conv)
        cin = width
    for p in layers.parameters():
        p.requires_grad_(False)
    return layers


def _feats(net, x):
    out = []
    for i, conv in enumerate(net):
        x = F.relu(conv(x if i == 0 else F.avg_pool2d(x, 2)))  # one scale per layer
        out.append(x)
    return out


@functools.lru_cache(maxsize=1)
def _images(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_sample_image

    grey = lambda a: torch.from_numpy(a.astype("float32")).mean(-1) / 255  # noqa: E731 - (H, W, 3) -> (H, W) in [0, 1]
    content = grey(load_sample_image("china.jpg"))[100 : 100 + 4 * side : 4, 200 : 200 + 4 * side : 4]
    if importlib.util.find_spec("skimage"):
        import skimage.data

        style = torch.from_numpy(skimage.data.brick().astype("float32") / 255)[: 2 * side : 2, : 2 * side : 2]
    else:
        style = grey(load_sample_image("flower.jpg"))[: 4 * side : 4, : 4 * side : 4]
    return content[None, None].contiguous(), style[None, None].contiguous()  # (1, 1, side, side)


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
        Mutant(
            "gram_unnormalised",
            "Gram without 1/(C H W)",
            {"gram": staticmethod(lambda f: torch.einsum("nchw,ndhw->ncd", f, f))},
            match="Gram",
        ),
        Mutant(
            "style_on_features",
            "style loss compares features, not Grams",
            {"style_loss": lambda self, fs, ts: sum(F.mse_loss(a, b) for a, b in zip(fs, ts))},
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
        net = _features_net(cfg.width)
        content, style = _images(cfg.side)
        t_content, t_style = _feats(net, content)[-1].detach(), [f.detach() for f in _feats(net, style)]
        x = content.clone().requires_grad_(True)

        def loss_fn():
            fs = _feats(net, x)
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

        first = float(loss_fn().detach())
        return x, [first] + [step() for _ in range(iters)], step

    def check(self, ctx):
        cfg = ctx.configs[0]
        f = torch.randn(2, 3, 4, 5, generator=ctx.generator(), dtype=torch.float64)
        want = torch.empty(2, 3, 3, dtype=torch.float64)
        for n in range(2):
            for i in range(3):
                for j in range(3):
                    want[n, i, j] = (f[n, i] * f[n, j]).sum() / (3 * 4 * 5)
        ctx.assert_close(self.gram(f), want, name="Gram matrix = F F^T / (C H W)")
        a, b = f[:1], f[1:]
        ctx.assert_close(self.content_loss(a, b), ((a - b) ** 2).sum() / a.numel(), name="content loss")
        ga, gb = want[0], want[1]
        ctx.assert_close(
            torch.as_tensor(self.style_loss([a, a], [b, b])), 2 * ((ga - gb) ** 2).sum() / 9, name="style loss"
        )
        for which in self.variants:
            _, losses, _ = self._run(cfg, which, cfg.iters)
            ctx.expect(
                losses[-1] < 0.8 * losses[0],
                f"{which}: loss {losses[0]:.4g} -> {losses[-1]:.4g}, not down 20 %",
                name="combined loss falls",
            )

    def bench(self, ctx):
        cfg = ctx.configs[0]
        finals, pics = {}, []
        for which in self.variants:
            x, losses, _ = self._run(cfg, which, cfg.iters)
            ctx.curve(
                "combined loss", list(range(len(losses))), losses, series=which, x_label="optimiser step", log_y=True
            )
            finals[which] = losses[-1]
            ctx.metric(f"{which}_final_loss", losses[-1])
            pics.append(x.detach().clamp(0, 1))
        content, style = _images(cfg.side)
        ctx.metric("lbfgs_over_adam", finals["lbfgs"] / finals["adam"])
        ctx.image(
            "content, style, Adam, L-BFGS",
            torch.cat([content, style, *pics]),
            nrow=4,
            vmin=0,
            vmax=1,
            caption="random multi-scale conv features (not VGG): content china.jpg, style brick texture",
        )
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        _, _, step = self._run(config, impl, 0)
        return Prepared(fn=step, items=1, item_unit="iterations")
