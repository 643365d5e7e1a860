"""4.09 dilated_conv: the check passes; a dropped dilation, dilation applied to one axis
only, and a zero-inserted kernel with the taps one place off are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.layers.conv import conv2d_im2col

Task = REGISTRY.get("cnn.dilated_conv")


def test_check_passes():
    rec = run_check(Task)
    assert {"F.conv2d", "direct", "im2col", "zero_inserted", "zero_inserted grad (x, w, b)"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def _crop_to_reference(out, x, w, kw):
    ho = (x.shape[2] + 2 * kw["padding"][0] - kw["dilation"][0] * (w.shape[2] - 1) - 1) // kw["stride"][0] + 1
    wo = (x.shape[3] + 2 * kw["padding"][1] - kw["dilation"][1] * (w.shape[3] - 1) - 1) // kw["stride"][1] + 1
    return out[..., :ho, :wo].contiguous()


def test_missing_dilation_is_caught():
    def wrong(self, x, w, b, kw):
        return lambda: _crop_to_reference(conv2d_im2col(x, w, b, **{**kw, "dilation": 1}), x, w, kw)

    expect_check_fails(planted(Task, "im2col", wrong), match="im2col")


def test_dilation_on_rows_only_is_caught():
    def wrong(self, x, w, b, kw):
        d = kw["dilation"]
        return lambda: _crop_to_reference(conv2d_im2col(x, w, b, **{**kw, "dilation": (d[0], 1)}), x, w, kw)

    expect_check_fails(planted(Task, "direct", wrong), match="direct")


def test_zero_insertion_off_by_one_is_caught():
    def shifted(x, w, b, stride=1, padding=0, dilation=1, groups=1):
        d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
        o, cg, kh, kw = w.shape
        big = w.new_zeros(o, cg, d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
        big[:, :, :: d[0], :: d[1]] = w
        big = torch.roll(big, 1, dims=-1)  # every tap one column late
        return conv2d_im2col(x, big, b, stride, padding, 1, groups)

    class Wrong(Task):
        FUNCTIONS = {**Task.FUNCTIONS, "zero_inserted": shifted}

    expect_check_fails(Wrong, match="zero_inserted")
