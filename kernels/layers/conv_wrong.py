"""Wrong hand convolutions: the mutants of cnn.conv2d_manual, each a plausible mistake.

The first two have the task's ``@impl`` signature ``(self, x, w, b, kw) -> callable``
(``kw``: ``F.conv2d``'s stride, padding, dilation, groups) and crop their wrong output back
to the right size, so only the values can betray them; :func:`scaled_backward` is a conv
function ``(x, w, b, **kw)`` whose forward is right and whose backward is 0.1 % off. The
task's check must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.layers.conv import conv2d_im2col


def wrong_padding(self, x, w, b, kw):
    """WRONG im2col: pads one more pixel on each side, crops back to size."""
    p = kw["padding"]
    return lambda: conv2d_im2col(x, w, b, **{**kw, "padding": (p[0] + 1, p[1] + 1)})[..., 1:-1, 1:-1]


def no_dilation(self, x, w, b, kw):
    """WRONG tap loop: ignores dilation, crops to the expected size."""

    def run():
        ref = F.conv2d(x, w, b, **kw)
        return conv2d_im2col(x, w, b, **{**kw, "dilation": 1})[..., : ref.shape[-2], : ref.shape[-1]].contiguous()

    return run


class _ScaledGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by 1.001."""

    @staticmethod
    def forward(ctx, out):
        return out.clone()

    @staticmethod
    def backward(ctx, g):
        return g * 1.001  # 0.1 % off: still caught


def scaled_backward(x, w, b, **kw):
    """WRONG hand backward: :func:`conv2d_im2col` whose gradients are all 0.1 % too large."""
    return _ScaledGrad.apply(conv2d_im2col(x, w, b, **kw))
