"""7.08 StyleGAN-like building blocks: modulated convolution, demodulation, mapping, noise.

Compared: StyleGAN2's modulated convolution (Karras et al., "Analyzing and improving the image
quality of StyleGAN", CVPR 2020, Sec. 2.2) in two implementations from ``models.stylegan``:
``grouped`` (the batch folded into the groups of one convolution, as the paper does) and
``per_sample_loop`` (one ``F.conv2d`` per sample), against a hand reference that scales and
normalises the weights element by element and convolves by ``unfold`` + ``einsum``.

Check: both implementations equal the hand computation (3 seeded trials per config); with
demodulation the output std stays within 10 % of the input std for unit-variance inputs
(the paper's assumption), while without it the std follows the style scale; the mapping
network is pixel norm + 8 equalised-LR layers with LeakyReLU 0.2 whose stored weights are
N(0, 1) and effective weights N(0, 1/fan_in); noise injection starts as the identity (zero
scales) and then adds scale_c * noise.

Bench: the two implementations at StyleGAN2's width on the ``gpu`` preset (512 channels);
a heatmap shows per-(sample, channel) output std with and without demodulation.

Lesson: demodulation replaces AdaIN's normalisation of activations by a normalisation of
weights, which removes the "droplet" artefacts (Sec. 2) while keeping the style's scale
out of the activations; folding the batch into groups makes it one kernel launch.
Published figure for scale: StyleGAN2 (config F) reaches FID 2.84 on FFHQ 1024x1024
(Karras et al. 2020, Table 1); no training here, so nothing of ours is comparable.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_impl
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


class _PlainMapping(MappingNetwork):  # wrong: no equalised learning rate (weights used as stored)
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        for layer in self.layers:
            layer.scale = 1.0


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
        replace_impl(
            "first_style_for_all",
            "every sample gets sample 0's style",
            "grouped",
            lambda self, x, w, s: lambda: modconv_grouped(x, w, s[:1].expand_as(s)),
        ),
        replace_impl(
            "demod_over_out_channels",
            "demodulation normalises over output channels",
            "per_sample_loop",
            lambda self, x, w, s: lambda: _demod_wrong_axis(x, w, s),
        ),
        Mutant(
            "no_equalised_lr",
            "mapping layers without the 1/sqrt(fan_in) scale",
            {"mapping_cls": _PlainMapping},
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
        x = torch.randn(4, 16, 32, 32, generator=g)
        w, s = torch.randn(8, 16, 3, 3, generator=g), torch.rand(4, 16, generator=g) * 3 + 0.5
        std = float(modconv_grouped(x, w, s).std())
        ctx.expect(
            abs(std - 1) < 0.1,
            f"demodulated output std {std:.3f} for unit input: want 1 +/- 0.1",
            name="demodulation keeps std",
        )
        raw = float(
            modconv_grouped(x, w, s * 4, demodulate=False).std() / modconv_grouped(x, w, s, demodulate=False).std()
        )
        ctx.expect(
            abs(raw - 4) < 0.05,
            f"without demodulation 4x styles scale the output by {raw:.3f}",
            name="modulation scales",
        )
        torch.manual_seed(ctx.rng_seed)
        m = self.mapping_cls(z_dim=64, w_dim=64, layers=8)
        lin = [l for l in m.modules() if isinstance(l, EqualLinear)]
        ctx.expect(len(lin) == 8, f"mapping network has {len(lin)} layers, want 8", name="mapping: 8 layers")
        eff = torch.cat([(l.weight * l.scale).flatten() for l in lin]).detach()
        stored = torch.cat([l.weight.flatten() for l in lin]).detach()
        ctx.expect(
            abs(float(stored.std()) - 1) < 0.05 and abs(float(eff.std()) - 1 / 8) < 0.01,
            f"stored weight std {float(stored.std()):.3f} (want 1), effective {float(eff.std()):.4f} "
            "(want 1/sqrt(64) = 0.125): not an equalised learning rate",
            name="mapping: equalised learning rate",
        )
        ctx.expect(m(torch.randn(5, 64, generator=g)).shape == (5, 64), "mapping output shape", name="mapping: shape")
        noise_layer, feat, nz = (
            NoiseInjection(3),
            torch.randn(2, 3, 4, 4, generator=g),
            torch.randn(2, 1, 4, 4, generator=g),
        )
        ctx.assert_close(noise_layer(feat, nz), feat, name="noise injection: identity at init")
        with torch.no_grad():
            noise_layer.scale.copy_(torch.tensor([0.0, 1.0, -2.0]))
        ctx.assert_close(
            noise_layer(feat, nz),
            feat + torch.tensor([0.0, 1.0, -2.0]).view(1, 3, 1, 1) * nz,
            name="noise injection: scale * noise",
        )

    def bench(self, ctx):
        g = ctx.generator(8)
        x, w, s = (
            torch.randn(8, 32, 16, 16, generator=g),
            torch.randn(16, 32, 3, 3, generator=g),
            torch.rand(8, 32, generator=g) * 3,
        )
        with_d = modconv_grouped(x, w, s).std(dim=(2, 3))  # (N, Cout)
        without = modconv_grouped(x, w, s, demodulate=False).std(dim=(2, 3))
        ctx.heatmap(
            "output std, demodulated", with_d, x_label="output channel", y_label="sample", caption="near 1 everywhere"
        )
        ctx.heatmap(
            "output std, modulated only",
            without,
            x_label="output channel",
            y_label="sample",
            caption="follows the style scale",
        )
        super().bench(ctx)


def _demod_wrong_axis(x, w, s):
    wm = w[None] * s[:, None, :, None, None]  # (N, Cout, Cin, k, k)
    wm = wm * torch.rsqrt(wm.square().sum(dim=(1, 3, 4), keepdim=True) + 1e-8)  # over Cout: wrong
    k = w.shape[-1]
    return torch.cat([F.conv2d(x[i : i + 1], wm[i], padding=k // 2) for i in range(x.shape[0])])
