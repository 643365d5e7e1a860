"""4.02 Convolution without nn.Conv2d.

Compared: three hand-written 2-D convolutions (``kernels/layers/conv.py``) against
``F.conv2d`` (the baseline, oneDNN/MKL-DNN on this CPU), forward and backward: ``direct``
loops over the kh*kw kernel taps (a small GEMM of each strided window by its weight slice);
``unfold`` is the textbook im2col (``F.unfold`` + a batched matmul per image); ``im2col``
gathers the patches by hand from an ``as_strided`` channels-last view into one
(N*Ho*Wo, kh*kw*Cin/G) matrix per group, one GEMM for the batch, with a hand backward
(grad_w = cols^T @ grad_out, grad_x = col2im of grad_out @ w^T). GFLOP/s counts
2*N*Cout*Ho*Wo*(Cin/groups)*kh*kw per call (``kernels.layers.conv.conv2d_flops``).

Lesson: turning convolution into GEMM is most of the way to a library convolution, if the
patch matrix stays in cache: built for a whole 32x64x32x32 batch at once it is 75 MB (kh*kw
copies of the input) and falls far behind; built a chunk of images at a time
(``kernels.layers.conv.CHUNK_BYTES``) straight into the NCHW output it comes within the
claims' factor of ``F.conv2d``. The tap loop's kh*kw small GEMMs (K = Cin) and ``F.unfold``
(whole-batch patches plus a layout copy) stay further behind, grouped convolutions furthest
(G small GEMMs per image). oneDNN never builds a patch matrix (direct convolution on blocked
channels-last data; oneDNN developer guide, "Convolution" primitive), which keeps it ahead.
im2col as the classic route: Chellapilla et al., "High Performance Convolutional Neural
Networks for Document Processing", 2006.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from harness import Operator, Prepared, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_impl
from kernels.layers import conv
from kernels.layers.conv import ConvShape as C
from kernels.layers.conv_wrong import no_dilation, scaled_backward, wrong_padding

H = "32x64x32x32->64,k3x3"  # label of the first cpu config: the headline shape (claims, gflops ratio)
#: implementation name -> function(x, w, b, stride, padding, dilation, groups): what the impls
#: call and the gradient check differentiates (the wrong_backward mutant swaps one)
HAND = {"direct": conv.conv2d_direct, "unfold": conv.conv2d_unfold, "im2col": conv.conv2d_im2col}
OFF_BACKWARD = {**HAND, "im2col": scaled_backward}  # the wrong_backward mutant's functions


@task("cnn.conv2d_manual", seed="4.02", title="convolution without nn.Conv2d")
class Conv2dManual(Operator):
    __doc__ = __doc__
    FUNCTIONS = HAND
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
        replace_impl("wrong_padding", "im2col pads one pixel too many and crops", "im2col", wrong_padding),
        replace_impl("ignores_dilation", "the tap loop ignores dilation", "direct", no_dilation),
        Mutant("wrong_backward", "the hand backward is 0.1 % off", {"FUNCTIONS": OFF_BACKWARD}, match="grad"),
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

    # the config builds its own seeded inputs and counts its FLOPs and bytes (kernels/layers/conv.py)
    inputs, flops, bytes = staticmethod(C.inputs), staticmethod(C.flops), staticmethod(C.bytes)

    def reference(self, x, w, b, kw):
        return F.conv2d(x, w, b, **kw)

    def items(self, c):
        return c.n, "images"

    @impl(baseline=True, name="F.conv2d")
    def torch_conv2d(self, x, w, b, kw):
        return lambda: F.conv2d(x, w, b, **kw)

    # each: lambda: self.FUNCTIONS[name](x, w, b, **kw), so a mutant can swap the function
    direct = conv.conv_impl("direct")
    unfold = conv.conv_impl("unfold")
    im2col = conv.conv_impl("im2col")

    def extra_checks(self, ctx):
        for config in ctx.configs:
            grads = conv.grads_vs_conv2d(self.FUNCTIONS, config, ctx.device, ctx.dtype, ctx.rng_seed)
            for name, (got, want) in grads.items():
                ctx.assert_close(got, want, name=f"{name} grad (x, w, b)", where=config.label())
            x, k = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)[0], (config.kh, config.kw)
            cols = conv.im2col(x, k, config.stride, config.padding, config.dilation)  # (N, Cin*kh*kw, Ho*Wo)
            want = F.unfold(x, k, config.dilation, config.padding, config.stride)
            ctx.assert_close(cols, want, name="im2col layout == F.unfold", where=config.label())
        # float64 gradcheck of the hand-written backward, on a grouped, strided, dilated case
        c = C(1, 4, 4, 5, 6, kh=3, kw=2, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
        x, w, b, kw = c.inputs(ctx.device, torch.float64, ctx.rng_seed)
        fn, args = self.FUNCTIONS["im2col"], (x.requires_grad_(), w.requires_grad_(), b.requires_grad_())
        ok = torch.autograd.gradcheck(lambda *a: fn(*a, **kw), args, fast_mode=True, raise_exception=False)
        ctx.expect(ok, "im2col hand-written backward fails torch.autograd.gradcheck (float64)", name="im2col gradcheck")
        x = torch.randn(1, 6, 5, 5)
        bad = (  # (weight, conv arguments, what the error must say, the check's name)
            (torch.randn(4, 3, 3, 3), {"groups": 4}, "divisible", "rejects channels not divisible by groups"),
            (torch.randn(4, 6, 7, 7), {}, "output would be", "rejects a kernel larger than the padded input"),
        )
        for name, fn in self.FUNCTIONS.items():
            for w, kw, match, what in bad:
                ctx.expect_raises(ValueError, lambda: fn(x, w, None, **kw), match=match, name=f"{name} {what}")

    def bench(self, ctx):
        super().bench(ctx)
        # training cost of the headline config: forward + backward, autograd vs hand-written
        c = ctx.configs[0]
        x, w, b, kw = self.inputs(c, ctx.device, ctx.dtype, ctx.rng_seed)
        grad_out = torch.randn_like(F.conv2d(x, w, b, **kw))
        for name, fn in (("F.conv2d", F.conv2d), ("im2col", self.FUNCTIONS["im2col"])):
            fwd_bwd = functools.partial(conv.conv_grads, fn, x, w, b, grad_out, **kw)
            prepared = Prepared(fwd_bwd, flops=3 * self.flops(c), items=c.n, item_unit="images")
            ctx.measure(name, prepared, config=f"{c.label()} fwd+bwd")
        gflops = {m["impl"]: m["gflops"] for m in ctx.record.measurements if m["config"] == c.label()}
        ctx.metric("im2col_over_conv2d_gflops_ratio", gflops["im2col"] / gflops["F.conv2d"])
