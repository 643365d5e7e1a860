"""4.02 conv2d_manual: the check passes, and wrong padding, a dropped dilation and a wrong
hand-written backward are caught."""

import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.layers.conv import conv2d_im2col

Task = REGISTRY.get("cnn.conv2d_manual")


def test_check_passes():
    rec = run_check(Task)
    names = {c["name"] for c in rec.checks.values()}
    assert {"F.conv2d", "direct", "unfold", "im2col", "im2col grad (x, w, b)", "im2col gradcheck"} <= names
    assert all(c["passed"] for c in rec.checks.values())


def test_im2col_with_wrong_padding_is_caught():
    def wrong(self, x, w, b, kw):
        p = kw["padding"]
        bad = {**kw, "padding": (p[0] + 1, p[1] + 1)}
        return lambda: conv2d_im2col(x, w, b, **bad)[..., 1:-1, 1:-1] if min(p) >= 0 else None

    expect_check_fails(planted(Task, "im2col", wrong), match="im2col")


def test_missing_dilation_is_caught():
    # ignores dilation, then crops to the expected size so only values can give it away
    def wrong(self, x, w, b, kw):
        def run():
            ref = F.conv2d(x, w, b, **kw)
            out = conv2d_im2col(x, w, b, **{**kw, "dilation": 1})
            return out[..., : ref.shape[-2], : ref.shape[-1]].contiguous()

        return run

    expect_check_fails(planted(Task, "direct", wrong), match="direct")


class _WrongWeightGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out):
        return out.clone()

    @staticmethod
    def backward(ctx, g):
        return g * 1.001  # 0.1% off: still caught


def test_wrong_backward_is_caught():
    def scaled_backward(x, w, b, **kw):
        return _WrongWeightGrad.apply(conv2d_im2col(x, w, b, **kw))

    class Wrong(Task):
        FUNCTIONS = {**Task.FUNCTIONS, "im2col": scaled_backward}

    expect_check_fails(Wrong, match="grad")
