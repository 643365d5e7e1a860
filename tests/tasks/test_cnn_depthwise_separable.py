"""4.07 depthwise_separable: the check passes; a "depthwise" conv with groups=1, a module
with an extra layer, and an implementation that drops the pointwise bias are caught."""

import torch
import torch.nn.functional as F
from torch import nn

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from models.convnets import DepthwiseSeparableConv

Task = REGISTRY.get("cnn.depthwise_separable")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["flop_ratio_standard_over_separable"] > 1
    assert rec.tables and rec.tables[0]["rows"][0]["params_separable"] < rec.tables[0]["rows"][0]["params_standard"]


class GroupsOne(DepthwiseSeparableConv):
    """The classic slip: a k x k conv over all channels instead of one filter per channel."""

    def __init__(self, cin, cout, kernel_size=3, stride=1, padding=1, dilation=1, bias=True):
        super().__init__(cin, cout, kernel_size, stride, padding, dilation, bias)
        self.depthwise = nn.Conv2d(cin, cin, kernel_size, stride, padding, dilation, groups=1, bias=bias)
        with torch.no_grad():  # identity across channels, so the copied per-channel filters still fit
            self.depthwise.weight.zero_()

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def test_depthwise_with_groups_one_is_caught():
    # copying (Cin, 1, k, k) weights into a (Cin, Cin, k, k) conv broadcasts each filter over
    # all input channels: wrong values, wrong group count, wrong parameter count
    Wrong = type("Wrong", (Task,), {"module_cls": GroupsOne})
    expect_check_fails(Wrong, match="module")


def test_groups_one_implementation_is_caught():
    def dense(self, x, w_dw, b_dw, w_pw, b_pw, sp):
        full = w_dw.expand(-1, x.shape[1], -1, -1) / x.shape[1]
        return lambda: F.conv2d(F.conv2d(x, full, b_dw, sp[0], sp[1]), w_pw, b_pw)

    expect_check_fails(planted(Task, "im2col", dense), match="im2col")


class WithBN(DepthwiseSeparableConv):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.bn = nn.BatchNorm2d(self.depthwise.out_channels, eps=0.0).eval()  # the identity: only the count is off

    def forward(self, x):
        return self.pointwise(self.bn(self.depthwise(x)))


def test_extra_parameters_are_caught():
    Wrong = type("Wrong", (Task,), {"module_cls": WithBN})
    expect_check_fails(Wrong, match="parameter")


def test_dropped_pointwise_bias_is_caught():
    def no_bias(self, x, w_dw, b_dw, w_pw, b_pw, sp):
        return lambda: F.conv2d(F.conv2d(x, w_dw, b_dw, sp[0], sp[1], groups=x.shape[1]), w_pw, None)

    expect_check_fails(planted(Task, "im2col", no_bias), match="im2col")
