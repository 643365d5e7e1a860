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

The claims check both halves at 3x3, padding = d, d in 1, 2, 4. A library may still beat
the hand im2col on dilated shapes: oneDNN picks other kernels for them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import metric, speedup
from harness.mutants import Mutant, replace_impl
from kernels.layers.conv import ConvShape, conv2d_direct, conv2d_im2col, conv2d_zero_inserted, grads_vs_conv2d

C = ConvShape


# -- wrong versions (mutants) ------------------------------------------------------------


def _crop_to_reference(out, x, w, kw):  # cut a wrong-size output to the right size: only values can tell
    ho = (x.shape[2] + 2 * kw["padding"][0] - kw["dilation"][0] * (w.shape[2] - 1) - 1) // kw["stride"][0] + 1
    wo = (x.shape[3] + 2 * kw["padding"][1] - kw["dilation"][1] * (w.shape[3] - 1) - 1) // kw["stride"][1] + 1
    return out[..., :ho, :wo].contiguous()


def _no_dilation(self, x, w, b, kw):
    return lambda: _crop_to_reference(conv2d_im2col(x, w, b, **{**kw, "dilation": 1}), x, w, kw)


def _rows_only(self, x, w, b, kw):
    return lambda: _crop_to_reference(conv2d_im2col(x, w, b, **{**kw, "dilation": (kw["dilation"][0], 1)}), x, w, kw)


def _zeros_one_late(x, w, b, stride=1, padding=0, dilation=1, groups=1):
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    o, cg, kh, kw = w.shape
    big = w.new_zeros(o, cg, d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
    big[:, :, :: d[0], :: d[1]] = w
    return conv2d_im2col(x, torch.roll(big, 1, dims=-1), b, stride, padding, 1, groups)  # every tap a column late


@task("cnn.dilated_conv", seed="4.09", title="dilated convolution by hand")
class DilatedConv(Operator):
    __doc__ = __doc__
    #: implementation name -> conv function; the gradient check differentiates these
    FUNCTIONS = {"direct": conv2d_direct, "im2col": conv2d_im2col, "zero_inserted": conv2d_zero_inserted}
    metrics = {"im2col_dmax_over_d1": "median im2col time at the largest dilation / at dilation 1, same shape"}
    claims = (
        metric("im2col_dmax_over_d1", "<=", 1.25, text="dilation is free in im2col: d = 4 costs <= 1.25x d = 1"),
        speedup("im2col", over="zero_inserted", at_least=4, text="at d = 4 im2col >= 4x the zero-inserted kernel"),
    )
    mutants = (
        replace_impl("ignores_dilation", "im2col with dilation 1", "im2col", _no_dilation),
        replace_impl("dilates_rows_only", "dilation applied to rows only", "direct", _rows_only),
        Mutant(
            "zero_insertion_off_by_one",
            "the zero-inserted kernel's taps one column late",
            {"FUNCTIONS": {"direct": conv2d_direct, "im2col": conv2d_im2col, "zero_inserted": _zeros_one_late}},
            match="zero_inserted",
        ),
    )
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
        im2col = [m["median_ms"] for m in ctx.record.measurements if m["impl"] == "im2col"]  # d = 1, ..., d max
        ctx.metric("im2col_dmax_over_d1", im2col[-1] / im2col[0])
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
