"""4.09 Dilated convolution by hand.

Compared: ``F.conv2d(dilation=d)`` (the baseline) against three hand-written versions
(``kernels/layers/conv.py``):

* ``direct``: the tap loop with tap (i, j) reading the padded input at offset (i*d, j*d);
* ``im2col``: patches gathered with the dilation folded into the strides of an
  ``as_strided`` view (tap stride d*row_stride), then one GEMM; hand-written backward;
* ``zero_inserted``: the kernel blown up to d*(k-1)+1 taps with zeros between the real
  ones, then an undilated im2col convolution (Yu & Koltun, ICLR 2016, define dilation this
  way); it does ((d*(k-1)+1)/k)**2 times the useful multiply-adds (25/9 at k=3, d=2;
  49/9 at d=3; 81/9 at d=4).

Checked: all equal ``F.conv2d`` with dilation 2, 3, (2, 3) and 4, combined with stride,
padding, groups and rectangular kernels, 3 seeds each; gradients of input, weight and bias
equal autograd of ``F.conv2d``. GFLOP/s counts the useful work, 2*N*Cout*Ho*Wo*Cin/G*k*k,
for every implementation, so the zero-inserted version's waste shows as a lower rate.

Lesson: dilation is free in an im2col convolution: it changes two strides of the patch
view, not the amount of data or arithmetic, so the dilated im2col runs at the undilated
speed while the receptive field grows from 3 to 2d+1. Inserting zeros into the kernel is
the definition, not an implementation: its cost grows as d**2.

Timing note: this machine was shared with other jobs (load average 6-8 on 2 cores). With
2 threads every figure was distorted by OpenMP threads waiting for a descheduled peer
(F.conv2d itself ran 2x slower than with one thread), so the figures below come from
``OMP_NUM_THREADS=1 drills bench --task cnn.dilated_conv --no-save`` (one thread, torch 2.13 CPU,
float32, AMD EPYC); single runs, +-20% between runs.

16x64x32x32 -> 64, 3x3, padding = d (two runs): im2col 46 GFLOP/s (26-30 ms) at d = 1, 2
and 4 alike; direct 16-18 GFLOP/s at every d; zero_inserted 43-45 GFLOP/s of useful work
at d = 1 (it is im2col), 13-15 at d = 2 and 4 at d = 4, tracking the 2.8x and 9x work
ratios. F.conv2d ran at 49-53 GFLOP/s undilated but 77-84 dilated in both runs (oneDNN
picks another kernel for dilated shapes), so im2col is 0.82-0.89x of it at d = 1 and
0.47-0.57x at d = 2, 4. Bench time 8 s.
"""

from __future__ import annotations

import torch.nn.functional as F

from harness import Operator, impl, task
from kernels.layers.conv import ConvShape, conv2d_direct, conv2d_im2col, conv2d_zero_inserted, grads_vs_conv2d

C = ConvShape


@task("cnn.dilated_conv", seed="4.09", title="dilated convolution by hand")
class DilatedConv(Operator):
    __doc__ = __doc__
    #: implementation name -> conv function; the gradient check differentiates these
    FUNCTIONS = {"direct": conv2d_direct, "im2col": conv2d_im2col, "zero_inserted": conv2d_zero_inserted}
    sizes = {
        "tiny": [
            C(2, 3, 4, 9, 9, dilation=(2, 2), padding=(2, 2)),
            C(2, 4, 6, 12, 11, dilation=(3, 3), padding=(1, 1), stride=(2, 2)),
            C(1, 4, 4, 11, 13, kh=3, kw=2, dilation=(2, 3), padding=(0, 2), bias=False),
            C(2, 6, 4, 10, 10, dilation=(2, 2), padding=(2, 2), groups=2),
            C(1, 2, 3, 12, 12, dilation=(4, 4), padding=(4, 4)),
        ],
        # same-size dilated 3x3 layers (padding = d) at growing d: the DeepLab / WaveNet shape
        "cpu": [C(16, 64, 64, 32, 32, dilation=(d, d), padding=(d, d)) for d in (1, 2, 4)],
        "gpu": [C(128, 64, 64, 32, 32, dilation=(d, d), padding=(d, d)) for d in (1, 2, 4)],
    }

    def inputs(self, config, device, dtype, seed):
        return config.inputs(device, dtype, seed)

    def reference(self, x, w, b, kw):
        return F.conv2d(x, w, b, **kw)

    def flops(self, c):
        return c.flops()

    def bytes(self, c, dtype):
        return c.bytes(dtype)

    @impl(baseline=True, name="F.conv2d")
    def torch_conv2d(self, x, w, b, kw):
        return lambda: F.conv2d(x, w, b, **kw)

    @impl
    def direct(self, x, w, b, kw):
        return lambda: self.FUNCTIONS["direct"](x, w, b, **kw)

    @impl
    def im2col(self, x, w, b, kw):
        return lambda: self.FUNCTIONS["im2col"](x, w, b, **kw)

    @impl
    def zero_inserted(self, x, w, b, kw):
        return lambda: self.FUNCTIONS["zero_inserted"](x, w, b, **kw)

    def extra_checks(self, ctx):
        for config in ctx.configs:
            for name, (got, want) in grads_vs_conv2d(
                self.FUNCTIONS, config, ctx.device, ctx.dtype, ctx.rng_seed
            ).items():
                ctx.assert_close(got, want, name=f"{name} grad (x, w, b)", where=config.label())

    def bench(self, ctx):
        super().bench(ctx)
        ctx.table(
            "zero-inserted kernel: multiply-adds done per useful one",
            [
                {
                    "config": c.label(),
                    "dilation": c.dilation[0],
                    "receptive_field_px": c.dilation[0] * (c.kh - 1) + 1,
                    "work_ratio": round(((c.dilation[0] * (c.kh - 1) + 1) / c.kh) ** 2, 3),
                }
                for c in ctx.configs
            ],
        )
