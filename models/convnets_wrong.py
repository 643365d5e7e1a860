"""Wrong depthwise separable convolutions: the mutants of cnn.depthwise_separable.

Each subclasses :class:`models.convnets.DepthwiseSeparableConv`, which it mirrors, and keeps
its constructor and shapes, (N, cin, H, W) -> (N, cout, Ho, Wo); the task's checks (values
against grouped conv + 1x1, groups = Cin, the parameter-count formula) must catch each one
(``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from models.convnets import DepthwiseSeparableConv


class DepthwiseGroupsOne(DepthwiseSeparableConv):
    """WRONG, the classic slip: a k x k conv over all channels instead of one filter per channel."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = True,
    ):
        super().__init__(cin, cout, kernel_size, stride, padding, dilation, bias)
        self.depthwise = nn.Conv2d(cin, cin, kernel_size, stride, padding, dilation, groups=1, bias=bias)


class DepthwiseWithBN(DepthwiseSeparableConv):
    """WRONG: an identity BatchNorm (eval mode, eps 0) between the two convs.

    Right values on fresh statistics (mean 0, var 1), wrong parameter count (+ 2 * cin).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bn = nn.BatchNorm2d(self.depthwise.out_channels, eps=0.0).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.bn(self.depthwise(x)))
