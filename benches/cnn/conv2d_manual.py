"""4.02 Convolution without nn.Conv2d.

Compared: three hand-written 2-D convolutions (``kernels/layers/conv.py``) against
``F.conv2d`` (the baseline, oneDNN/MKL-DNN on this CPU), forward and backward:

* ``direct``: a loop over the kh*kw kernel taps; each tap multiplies the strided window
  of the padded input it touches by its (Cout/G, Cin/G) weight slice (kh*kw small GEMMs);
  gradients by autograd.
* ``unfold``: the textbook im2col, ``F.unfold`` + a batched matmul per image (NCHW
  patches, Cin*kh*kw x Ho*Wo per image); gradients by autograd.
* ``im2col``: patches gathered by hand from an ``as_strided`` view of the channels-last
  padded input into one (N*Ho*Wo, kh*kw*Cin/G) matrix per group, so a single GEMM does
  the batch; hand-written backward (grad_w = cols^T @ grad_out, grad_x = col2im of
  grad_out @ w^T, a scatter-add over taps).

Checked: every implementation equals ``F.conv2d`` on stride, padding, dilation, groups
(incl. depthwise), rectangular kernels and odd sizes, 3 seeds each; gradients of input,
weight and bias equal autograd of ``F.conv2d``; ``gradcheck`` in float64 on the
hand-written backward; the hand im2col equals ``F.unfold``; bad arguments raise.
GFLOP/s counts 2*N*Cout*Ho*Wo*(Cin/groups)*kh*kw per call.

Lesson: turning convolution into GEMM is most of the way to a library convolution, if
the patch matrix stays in cache. Built for a whole 32x64x32x32 batch at once it is 75 MB
(kh*kw copies of the input) and falls far behind; built a chunk of images at a time
(``kernels.layers.conv.CHUNK_BYTES``) and multiplied straight into the NCHW output it
comes within the claims' factor of ``F.conv2d``. The tap loop's kh*kw small GEMMs (K =
Cin) and the autograd ``F.unfold`` version (whole-batch patches plus a layout copy) stay
further behind. Grouped convolutions are where the hand versions fall furthest behind: G
small GEMMs per image. oneDNN never builds a patch matrix (direct convolution on blocked
channels-last data; oneDNN developer guide, "Convolution" primitive), which is why it
stays ahead. im2col as the classic route: Chellapilla et al., "High Performance
Convolutional Neural Networks for Document Processing", 2006.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness import Operator, Prepared, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_impl
from kernels.layers.conv import (
    ConvShape,
    conv2d_direct,
    conv2d_im2col,
    conv2d_unfold,
    conv_grads,
    grads_vs_conv2d,
    im2col,
)

C = ConvShape
H = "32x64x32x32->64,k3x3"  # label of the first cpu config: the headline shape


# -- wrong versions (mutants) ------------------------------------------------------------


def _wrong_padding(self, x, w, b, kw):  # pads one more on each side, crops back to size
    p = kw["padding"]
    return lambda: conv2d_im2col(x, w, b, **{**kw, "padding": (p[0] + 1, p[1] + 1)})[..., 1:-1, 1:-1]


def _no_dilation(self, x, w, b, kw):  # ignores dilation, crops to the expected size
    def run():
        ref = F.conv2d(x, w, b, **kw)
        return conv2d_im2col(x, w, b, **{**kw, "dilation": 1})[..., : ref.shape[-2], : ref.shape[-1]].contiguous()

    return run


class _ScaledGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out):
        return out.clone()

    @staticmethod
    def backward(ctx, g):
        return g * 1.001  # 0.1 % off: still caught


def _scaled_backward(x, w, b, **kw):
    return _ScaledGrad.apply(conv2d_im2col(x, w, b, **kw))


@task("cnn.conv2d_manual", seed="4.02", title="convolution without nn.Conv2d")
class Conv2dManual(Operator):
    __doc__ = __doc__
    #: implementation name -> function(x, w, b, stride, padding, dilation, groups); the
    #: gradient check differentiates these (tests swap in wrong ones)
    FUNCTIONS = {"direct": conv2d_direct, "unfold": conv2d_unfold, "im2col": conv2d_im2col}
    claims = (
        time_ratio(
            "im2col", to="F.conv2d", at_most=2.0, config=H, device="cpu", text=f"im2col within 2x of F.conv2d at {H}"
        ),
        time_ratio(
            "im2col", to="F.conv2d", at_most=2.0, config="fwd+bwd", text="fwd+bwd: hand im2col within 2x of F.conv2d"
        ),
        speedup(
            "im2col",
            over="direct",
            at_least=1.5,
            config=H,
            device="cpu",
            text="one GEMM (im2col) >= 1.5x kh*kw small GEMMs",
        ),
    )
    mutants = (
        replace_impl("wrong_padding", "im2col pads one pixel too many and crops", "im2col", _wrong_padding),
        replace_impl("ignores_dilation", "the tap loop ignores dilation", "direct", _no_dilation),
        Mutant(
            "wrong_backward",
            "the hand backward is 0.1 % off",
            {"FUNCTIONS": {"direct": conv2d_direct, "unfold": conv2d_unfold, "im2col": _scaled_backward}},
            match="grad",
        ),
    )
    sizes = {
        "tiny": [
            C(2, 3, 4, 7, 9),
            C(2, 4, 6, 9, 8, stride=(2, 2), padding=(2, 1)),
            C(1, 4, 4, 11, 10, kh=3, kw=2, dilation=(2, 3), padding=(2, 0), bias=False),
            C(2, 6, 4, 8, 8, groups=2, stride=(1, 2)),
            C(2, 4, 4, 6, 7, groups=4),  # depthwise
            C(3, 5, 3, 5, 5, kh=1, kw=1, padding=(0, 0)),
        ],
        # the first config is the headline one (the im2col / F.conv2d ratio metric)
        "cpu": [
            C(32, 64, 64, 32, 32),
            C(32, 3, 32, 32, 32),
            C(8, 64, 128, 56, 56, stride=(2, 2)),
            C(32, 64, 256, 16, 16, kh=1, kw=1, padding=(0, 0)),
            C(16, 64, 64, 32, 32, groups=8),
        ],
        "gpu": [
            C(128, 64, 64, 32, 32),
            C(128, 3, 32, 32, 32),
            C(64, 128, 128, 16, 16),
            C(64, 64, 128, 56, 56, stride=(2, 2)),
            C(128, 64, 256, 16, 16, kh=1, kw=1, padding=(0, 0)),
            C(128, 64, 64, 32, 32, groups=8),
        ],
    }

    def inputs(self, config, device, dtype, seed):
        return config.inputs(device, dtype, seed)

    def reference(self, x, w, b, kw):
        return F.conv2d(x, w, b, **kw)

    def flops(self, c):
        return c.flops()

    def bytes(self, c, dtype):
        return c.bytes(dtype)

    def items(self, c):
        return c.n, "images"

    @impl(baseline=True, name="F.conv2d")
    def torch_conv2d(self, x, w, b, kw):
        return lambda: F.conv2d(x, w, b, **kw)

    @impl
    def direct(self, x, w, b, kw):
        return lambda: self.FUNCTIONS["direct"](x, w, b, **kw)

    @impl
    def unfold(self, x, w, b, kw):
        return lambda: self.FUNCTIONS["unfold"](x, w, b, **kw)

    @impl
    def im2col(self, x, w, b, kw):
        return lambda: self.FUNCTIONS["im2col"](x, w, b, **kw)

    def extra_checks(self, ctx):
        for config in ctx.configs:
            for name, (got, want) in grads_vs_conv2d(
                self.FUNCTIONS, config, ctx.device, ctx.dtype, ctx.rng_seed
            ).items():
                ctx.assert_close(got, want, name=f"{name} grad (x, w, b)", where=config.label())
            x = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)[0]
            cols = im2col(x, (config.kh, config.kw), config.stride, config.padding, config.dilation)
            ctx.assert_close(
                cols,
                F.unfold(x, (config.kh, config.kw), config.dilation, config.padding, config.stride),
                name="im2col layout == F.unfold",
                where=config.label(),
            )
        # float64 gradcheck of the hand-written backward, on a grouped, strided, dilated case
        c = C(1, 4, 4, 5, 6, kh=3, kw=2, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
        x, w, b, kw = c.inputs(ctx.device, torch.float64, ctx.rng_seed)
        fn = self.FUNCTIONS["im2col"]
        ok = torch.autograd.gradcheck(
            lambda x_, w_, b_: fn(x_, w_, b_, **kw),
            (x.requires_grad_(), w.requires_grad_(), b.requires_grad_()),
            fast_mode=True,
            raise_exception=False,
        )
        ctx.expect(ok, "im2col hand-written backward fails torch.autograd.gradcheck (float64)", name="im2col gradcheck")
        x = torch.randn(1, 6, 5, 5)
        for name, fn in self.FUNCTIONS.items():
            ctx.expect_raises(
                ValueError,
                lambda: fn(x, torch.randn(4, 3, 3, 3), None, groups=4),
                match="divisible",
                name=f"{name} rejects channels not divisible by groups",
            )
            ctx.expect_raises(
                ValueError,
                lambda: fn(x, torch.randn(4, 6, 7, 7), None),
                match="output would be",
                name=f"{name} rejects a kernel larger than the padded input",
            )

    def bench(self, ctx):
        super().bench(ctx)
        # training cost of the headline config: forward + backward, autograd vs hand-written
        c = ctx.configs[0]
        x, w, b, kw = self.inputs(c, ctx.device, ctx.dtype, ctx.rng_seed)
        grad_out = torch.randn_like(F.conv2d(x, w, b, **kw))
        for name, fn in (("F.conv2d", F.conv2d), ("im2col", self.FUNCTIONS["im2col"])):
            ctx.measure(
                name,
                Prepared(
                    lambda fn=fn: conv_grads(fn, x, w, b, grad_out, **kw),
                    flops=3 * self.flops(c),
                    items=c.n,
                    item_unit="images",
                ),
                config=f"{c.label()} fwd+bwd",
            )
        rows = {(m["impl"], m["config"]): m for m in ctx.record.measurements}
        head = c.label()
        ratio = rows[("im2col", head)]["gflops"] / rows[("F.conv2d", head)]["gflops"]
        ctx.metric("im2col_over_conv2d_gflops_ratio", ratio)
