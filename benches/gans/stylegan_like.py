"""7.08 StyleGAN-like building blocks: modulated convolution, demodulation, mapping, noise.

Compared: StyleGAN2's modulated convolution (Karras et al., "Analyzing and improving the image
quality of StyleGAN", CVPR 2020, Sec. 2.2; ``models.stylegan``) as one convolution with the
batch folded into its groups (``grouped``, as the paper does) and as one ``F.conv2d`` per
sample, against weights scaled and normalised element by element, convolved by unfold + einsum.

Check: both against the reference (3 seeded trials per config); demodulation keeps a
unit-variance input's std (the paper's assumption), plain modulation scales it with the style;
8 mapping layers with an equalised learning rate; noise injection starts as the identity.
Bench: both at StyleGAN2's width (``gpu``: 512 channels); output std with and without demodulation.

Lesson: demodulation normalises the weights instead of AdaIN's activations, which removes the
"droplet" artefacts (Sec. 2) and keeps the style's scale out of the activations; folding the
batch into groups makes it one kernel launch. StyleGAN2 (config F) reaches FID 2.84 on FFHQ
1024x1024 (Table 1); nothing is trained here, so nothing of ours is comparable.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_call
from kernels.gan import wrong
from models.stylegan import EqualLinear, MappingNetwork, NoiseInjection, modconv_grouped, modconv_loop


@dataclasses.dataclass(frozen=True)
class ModConvConfig:
    """One modulated 'same' convolution."""

    batch: int
    """samples, each with its own style"""
    cin: int
    """input channels"""
    cout: int
    """output channels"""
    k: int
    """kernel side (odd)"""
    size: int
    """image side in pixels"""


@task("gans.stylegan_like", seed="7.08", title="StyleGAN-like architecture")
class StyleGanLike(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [ModConvConfig(2, 3, 4, 3, 5), ModConvConfig(4, 8, 8, 3, 8), ModConvConfig(3, 5, 2, 1, 4)],
        "cpu": [ModConvConfig(8, 64, 64, 3, 16)],
        "gpu": [ModConvConfig(16, 512, 512, 3, 32)],  # StyleGAN2's width at 32x32
    }
    claims = (
        time_ratio("grouped", to="per_sample_loop", at_most=1.2, text="grouped conv costs <= 1.2x the per-sample loop"),
        speedup(
            "grouped",
            over="per_sample_loop",
            at_least=2,
            device="cuda",
            text="on a GPU, one grouped launch >= 2x the per-sample loop at batch 16",
        ),
    )
    mapping_cls = MappingNetwork
    mutants = (
        replace_call("first_style_for_all", "every sample gets sample 0's style", "grouped", wrong.first_style_for_all),
        replace_call(
            "demod_over_out_channels",
            "demodulation normalises over output channels",
            "per_sample_loop",
            wrong.demod_over_out_channels,
        ),
        Mutant(
            "no_equalised_lr",
            "mapping layers without the 1/sqrt(fan_in) scale",
            {"mapping_cls": wrong.PlainMapping},
            match="equalised",
        ),
    )

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(config.batch, config.cin, config.size, config.size, generator=g, dtype=dtype)
        w = torch.randn(config.cout, config.cin, config.k, config.k, generator=g, dtype=dtype)
        s = torch.rand(config.batch, config.cin, generator=g, dtype=dtype) * 2 + 0.1  # styles in [0.1, 2.1)
        return x.to(device), w.to(device), s.to(device)

    def reference(self, x, w, s):
        n, cin, h, wd = x.shape
        cout, k = w.shape[0], w.shape[-1]
        mod = torch.empty(n, cout, cin, k, k, dtype=x.dtype, device=x.device)
        for i in range(n):  # Eq. 1 and 3 of the paper, spelled out per sample and output channel
            for j in range(cout):
                wj = w[j] * s[i].view(cin, 1, 1)
                mod[i, j] = wj / torch.sqrt((wj * wj).sum() + 1e-8)
        cols = F.unfold(x, k, padding=k // 2)  # (N, Cin*k*k, H*W)
        out = torch.einsum("nob,nbl->nol", mod.reshape(n, cout, -1), cols)  # (N, Cout, H*W)
        return out.reshape(n, cout, h, wd)

    @impl
    def grouped(self, x, w, s):
        return lambda: modconv_grouped(x, w, s)

    @impl(baseline=True)
    def per_sample_loop(self, x, w, s):
        return lambda: modconv_loop(x, w, s)

    def flops(self, config):
        return 2 * config.batch * config.cout * config.cin * config.k**2 * config.size**2

    def extra_checks(self, ctx):
        g = ctx.generator(7)
        x, w = torch.randn(4, 16, 32, 32, generator=g), torch.randn(8, 16, 3, 3, generator=g)
        s = torch.rand(4, 16, generator=g) * 3 + 0.5  # styles (N, Cin)
        std = float(modconv_grouped(x, w, s).std())  # of unit-variance inputs
        ctx.expect(abs(std - 1) < 0.1, f"demodulated std {std:.3f}, want 1 +/- 0.1", name="demodulation keeps std")
        plain = [float(modconv_grouped(x, w, k * s, demodulate=False).std()) for k in (1, 4)]
        r = plain[1] / plain[0]
        ctx.expect(abs(r - 4) < 0.05, f"undemodulated, 4x styles scale the std {r:.3f}x", name="modulation scales")
        torch.manual_seed(ctx.rng_seed)
        m = self.mapping_cls(z_dim=64, w_dim=64, layers=8)
        lin = [l for l in m.modules() if isinstance(l, EqualLinear)]
        ctx.expect(len(lin) == 8, f"mapping network has {len(lin)} layers, want 8", name="mapping: 8 layers")
        stored = float(torch.cat([l.weight.detach().flatten() for l in lin]).std())
        eff = float(torch.cat([(l.weight * l.scale).detach().flatten() for l in lin]).std())
        ctx.expect(
            abs(stored - 1) < 0.05 and abs(eff - 1 / 8) < 0.01,
            f"weight std stored {stored:.3f}, effective {eff:.4f}: want 1 and 1/sqrt(64), an equalised learning rate",
            name="mapping: equalised learning rate",
        )
        ctx.expect(m(torch.randn(5, 64, generator=g)).shape == (5, 64), "mapping output shape", name="mapping: shape")
        noise_layer, scale = NoiseInjection(3), torch.tensor([0.0, 1.0, -2.0])
        feat, nz = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)  # features, noise
        ctx.assert_close(noise_layer(feat, nz), feat, name="noise injection: identity at init")
        noise_layer.scale = torch.nn.Parameter(scale)  # as if trained
        want = feat + scale.view(1, 3, 1, 1) * nz  # scale (C,) per channel, noise (N, 1, H, W) shared
        ctx.assert_close(noise_layer(feat, nz), want, name="noise injection: scale * noise")

    def bench(self, ctx):
        g = ctx.generator(8)
        x, w = torch.randn(8, 32, 16, 16, generator=g), torch.randn(16, 32, 3, 3, generator=g)
        s = torch.rand(8, 32, generator=g) * 3
        panels = {"demodulated": (True, "near 1 everywhere"), "modulated only": (False, "follows the style scale")}
        for name, (demod, caption) in panels.items():
            std = modconv_grouped(x, w, s, demodulate=demod).std(dim=(2, 3))  # (N, Cout)
            ctx.heatmap(f"output std, {name}", std, x_label="output channel", y_label="sample", caption=caption)
        super().bench(ctx)
