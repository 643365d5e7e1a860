"""4.07 Depthwise separable convolution.

Compared: a depthwise separable convolution (a k x k depthwise conv, groups = Cin, one
filter per channel, then a 1x1 pointwise conv; Howard et al., "MobileNets", 2017, Sec.
3.1; Chollet, "Xception", CVPR 2017) computed three ways, and timed against the standard
k x k convolution with the same input and output shapes:

* ``grouped_conv`` (baseline): ``F.conv2d(groups=Cin)`` then ``F.conv2d`` with a 1x1 kernel;
* ``module``: ``models.convnets.DepthwiseSeparableConv`` with the same weights copied in;
* ``im2col``: both convolutions through ``kernels.layers.conv.conv2d_im2col`` (groups = Cin,
  then k = 1), the hand-written convolution of task 4.02;
* ``standard conv`` (bench only, a different operator): ``F.conv2d`` Cin -> Cout, k x k.

Checked: the module and the im2col version equal grouped conv + 1x1 (3 seeds, several
shapes, stride 2, k = 5, with and without bias); the module's depthwise layer has
groups = Cin; parameter counts of the module and of ``nn.Conv2d`` equal the formulas
k*k*Cin + Cin*Cout (+ Cin + Cout biases) and k*k*Cin*Cout (+ Cout); FLOP counts
2*N*Ho*Wo*(k*k*Cin + Cin*Cout) and 2*N*Ho*Wo*k*k*Cin*Cout equal what
``torch.utils.flop_counter.FlopCounterMode`` counts. Both are recorded per shape
(metrics and a table), with the ratio 1/Cout + 1/k**2 (MobileNets eq. 5).

Lesson: separable convolution cuts parameters and FLOPs by ~k**2 but time by less: the
depthwise half does only k*k multiply-adds per output element while reading and writing a
full feature map, so it runs at a fraction of the dense conv's FLOP rate (memory-bound;
the MobileNets paper, sec. 3.2, notes that its 1x1 convolutions take 95 % of the time for
75 % of the parameters). The larger the feature map relative to the channel count, the
bigger the depthwise share and the further the speedup falls below the FLOP ratio; the
claims measure both at the largest feature map of the preset.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness import Operator, Prepared, impl, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant, replace_impl
from kernels.layers.conv import conv2d_im2col, conv_output_size
from models.convnets import DepthwiseSeparableConv, conv_params, count_params, separable_params
from models.convnets_wrong import DepthwiseGroupsOne, DepthwiseWithBN


@dataclasses.dataclass(frozen=True)
class SepConfig:
    """x (n, cin, h, w) -> (n, cout, Ho, Wo) through a k x k depthwise + 1x1 pointwise conv."""

    n: int
    """batch (images)"""
    cin: int
    """input channels (= depthwise groups)"""
    cout: int
    """output channels"""
    h: int
    """input height (pixels)"""
    w: int
    """input width (pixels)"""
    k: int = 3
    """depthwise kernel side (taps)"""
    stride: int = 1
    """depthwise stride (pixels)"""
    padding: int = 1
    """depthwise zero padding per side (pixels)"""
    bias: bool = True
    """biases on both convolutions"""

    @property
    def out_hw(self) -> tuple[int, int]:
        return (
            conv_output_size(self.h, self.k, self.stride, self.padding),
            conv_output_size(self.w, self.k, self.stride, self.padding),
        )

    def label(self) -> str:
        return f"{self.n}x{self.cin}x{self.h}x{self.w}->{self.cout},k{self.k},s{self.stride}"

    def flops_separable(self) -> int:
        ho, wo = self.out_hw
        return 2 * self.n * ho * wo * (self.k * self.k * self.cin + self.cin * self.cout)

    def flops_standard(self) -> int:
        ho, wo = self.out_hw
        return 2 * self.n * ho * wo * self.k * self.k * self.cin * self.cout


S = SepConfig


# -- wrong versions of the im2col path (mutants; the module's are in models.convnets_wrong) --


def _dense(self, x, w_dw, b_dw, w_pw, b_pw, sp):  # each filter broadcast over all channels
    full = w_dw.expand(-1, x.shape[1], -1, -1) / x.shape[1]
    return lambda: F.conv2d(F.conv2d(x, full, b_dw, sp[0], sp[1]), w_pw, b_pw)


def _no_pointwise_bias(self, x, w_dw, b_dw, w_pw, b_pw, sp):
    return lambda: F.conv2d(F.conv2d(x, w_dw, b_dw, sp[0], sp[1], groups=x.shape[1]), w_pw, None)


@task("cnn.depthwise_separable", seed="4.07", title="depthwise separable convolution")
class DepthwiseSeparable(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [S(2, 4, 6, 8, 8), S(2, 3, 5, 9, 7, stride=2), S(1, 4, 4, 10, 10, k=5, padding=2, bias=False)],
        "cpu": [S(32, 64, 128, 32, 32), S(32, 128, 128, 16, 16), S(32, 256, 256, 8, 8)],
        "gpu": [S(128, 64, 128, 32, 32), S(128, 128, 128, 16, 16), S(128, 256, 256, 8, 8)],
    }
    #: the module under test (the mutants swap in broken ones)
    module_cls = DepthwiseSeparableConv
    metrics = {
        "speedup_over_standard": "median time of the standard k x k conv / of grouped_conv, first config, x",
        "flop_ratio_standard_over_separable": "FLOPs of the standard conv / of the separable one, first config",
    }
    claims = (
        metric("speedup_over_standard", ">=", 1.0, text="separable (grouped + 1x1) is faster than the dense conv"),
        metric(
            "flop_ratio_standard_over_separable", ">=", 8, text="separable cuts FLOPs >= 8x at k = 3 (MobileNets eq. 5)"
        ),
        time_ratio(
            "module", to="grouped_conv", at_most=1.1, text="the nn.Module costs <= 1.1x the two functional calls"
        ),
    )
    mutants = (
        Mutant(
            "depthwise_groups_one",
            "a dense k x k conv as the depthwise layer",
            {"module_cls": DepthwiseGroupsOne},
            match="module",
        ),
        Mutant("extra_layer", "an extra BatchNorm in the module", {"module_cls": DepthwiseWithBN}, match="parameter"),
        replace_impl("dense_depthwise", "im2col path convolves across channels", "im2col", _dense),
        replace_impl("no_pointwise_bias", "the 1x1 conv drops its bias", "im2col", _no_pointwise_bias),
    )

    def inputs(self, c, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(c.n, c.cin, c.h, c.w, generator=g, dtype=dtype)
        w_dw = torch.randn(c.cin, 1, c.k, c.k, generator=g, dtype=dtype) / c.k  # fan_in k*k
        w_pw = torch.randn(c.cout, c.cin, 1, 1, generator=g, dtype=dtype) / c.cin**0.5
        b_dw = torch.randn(c.cin, generator=g, dtype=dtype) if c.bias else None
        b_pw = torch.randn(c.cout, generator=g, dtype=dtype) if c.bias else None
        to = lambda t: None if t is None else t.to(device)  # noqa: E731
        return to(x), to(w_dw), to(b_dw), to(w_pw), to(b_pw), (c.stride, c.padding)

    def reference(self, x, w_dw, b_dw, w_pw, b_pw, sp):
        return F.conv2d(F.conv2d(x, w_dw, b_dw, sp[0], sp[1], groups=x.shape[1]), w_pw, b_pw)

    def flops(self, c):
        return c.flops_separable()

    def items(self, c):
        return c.n, "images"

    def make_module(self, w_dw, b_dw, w_pw, b_pw, sp):
        cin, k = w_dw.shape[0], w_dw.shape[-1]
        m = self.module_cls(cin, w_pw.shape[0], k, sp[0], sp[1], bias=b_dw is not None)
        m = m.to(w_dw.device, w_dw.dtype)
        with torch.no_grad():
            m.depthwise.weight.copy_(w_dw)
            m.pointwise.weight.copy_(w_pw)
            if b_dw is not None:
                m.depthwise.bias.copy_(b_dw)
                m.pointwise.bias.copy_(b_pw)
        return m

    @impl(baseline=True)
    def grouped_conv(self, x, w_dw, b_dw, w_pw, b_pw, sp):
        return lambda: F.conv2d(F.conv2d(x, w_dw, b_dw, sp[0], sp[1], groups=x.shape[1]), w_pw, b_pw)

    @impl
    def module(self, x, w_dw, b_dw, w_pw, b_pw, sp):
        m = self.make_module(w_dw, b_dw, w_pw, b_pw, sp)
        return torch.no_grad()(lambda: m(x))

    @impl
    def im2col(self, x, w_dw, b_dw, w_pw, b_pw, sp):
        return lambda: conv2d_im2col(conv2d_im2col(x, w_dw, b_dw, sp[0], sp[1], 1, x.shape[1]), w_pw, b_pw, 1, 0)

    def extra_checks(self, ctx):
        rows = []
        for c in ctx.configs:
            x, w_dw, b_dw, w_pw, b_pw, sp = self.inputs(c, ctx.device, ctx.dtype, ctx.rng_seed)
            m = self.make_module(w_dw, b_dw, w_pw, b_pw, sp)
            why = f"{c.label()}: depthwise conv has groups={m.depthwise.groups}, must be Cin={c.cin}"
            ctx.expect(m.depthwise.groups == c.cin, why, name="depthwise groups = Cin")
            standard = nn.Conv2d(c.cin, c.cout, c.k, c.stride, c.padding, bias=c.bias).to(ctx.device, ctx.dtype)
            p_sep, p_std = count_params(m), count_params(standard)
            for what, got, want in (
                ("separable", p_sep, separable_params(c.cin, c.cout, c.k, c.bias)),
                ("standard", p_std, conv_params(c.cin, c.cout, c.k, 1, c.bias)),
            ):
                why = f"{c.label()}: {what} module has {got} parameters, formula says {want}"
                ctx.expect(got == want, why, name=f"{what} parameter count")
            counted = {}
            for name, fn in (("separable", m), ("standard", standard)):
                with torch.no_grad(), FlopCounterMode(display=False) as fc:
                    fn(x)
                counted[name] = fc.get_total_flops()
            ctx.expect(
                counted["separable"] == c.flops_separable() and counted["standard"] == c.flops_standard(),
                f"{c.label()}: FLOPs counted {counted}, formulas say separable {c.flops_separable()}, "
                f"standard {c.flops_standard()}",
                name="FLOP formulas == FlopCounterMode",
            )
            flop_ratio = c.flops_standard() / c.flops_separable()
            rows.append(
                {
                    "config": c.label(),
                    "params_separable": p_sep,
                    "params_standard": p_std,
                    "param_ratio": round(p_std / p_sep, 3),
                    "flop_ratio": round(flop_ratio, 3),
                    "mobilenets_ratio_1/cout+1/k2": round(1 / c.cout + 1 / c.k**2, 4),
                }
            )
        ctx.table(f"parameters and FLOPs, standard vs separable ({ctx.size})", rows)
        ctx.metric("flop_ratio_standard_over_separable", rows[0]["flop_ratio"])
        ctx.metric("param_ratio_standard_over_separable", rows[0]["param_ratio"])

    def bench(self, ctx):
        self.extra_checks(ctx)  # the parameter/FLOP table of the bench sizes
        for i, c in enumerate(ctx.configs):
            sep = {s.name: ctx.measure(s.name, self.prepare(ctx, s.name, c), config=c) for s in self.implementations()}
            x = self.inputs(c, ctx.device, ctx.dtype, ctx.rng_seed)[0]
            w = torch.randn(c.cout, c.cin, c.k, c.k, generator=ctx.generator(1)).to(ctx.device, ctx.dtype)
            fn = lambda x=x, w=w, c=c: F.conv2d(x, w, None, c.stride, c.padding)  # noqa: E731 (named for reading)
            std = ctx.measure(
                "standard conv", Prepared(fn, flops=c.flops_standard(), items=c.n, item_unit="images"), config=c
            )
            if i == 0:  # the largest feature map: where depthwise costs most
                ctx.metric("speedup_over_standard", std.median_ms / sep["grouped_conv"].median_ms)
