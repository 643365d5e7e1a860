"""Fixed random multi-scale conv features: a stand-in for VGG-19 where pretrained weights cannot be had.

Ustyuzhaninov et al. 2016 ("Texture synthesis using shallow convolutional networks with random
filters") show that random filters already synthesise textures, so research.style_transfer
matches Gram matrices of these features. They are random features, labelled so, not VGG's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def random_features_net(width: int, layers: int = 3, in_channels: int = 1, seed: int = 1234) -> nn.ModuleList:
    """``layers`` frozen 3x3 convs (``in_channels`` -> ``width`` -> ... -> ``width``), weights N(0, 1 / fan_in)
    from ``seed`` (the same features on every run), zero biases."""
    g = torch.Generator().manual_seed(seed)
    net = nn.ModuleList()
    cin = in_channels
    for _ in range(layers):
        conv = nn.Conv2d(cin, width, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / (cin * 9) ** 0.5)
            conv.bias.zero_()
        net.append(conv)
        cin = width
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def multiscale_features(net: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's ReLU output for x (N, C, H, W): layer i sees a 2^i times average-pooled map, so
    the list is (N, width, H / 2^i, W / 2^i) for i = 0, 1, ...: one scale per layer."""
    out = []
    for i, conv in enumerate(net):
        x = F.relu(conv(x if i == 0 else F.avg_pool2d(x, 2)))
        out.append(x)
    return out
