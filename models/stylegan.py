"""StyleGAN2 building blocks: mapping network, equalised learning rate, modulated convolution, noise.

Karras et al., "Analyzing and improving the image quality of StyleGAN", CVPR 2020 (StyleGAN2),
Sec. 2.2 and Fig. 2; the mapping network and noise inputs from Karras et al. 2019 (StyleGAN).

* :class:`EqualLinear`: weights stored N(0, 1) and scaled by 1/sqrt(fan_in) at every call
  (Karras et al. 2018, ProGAN, Sec. 4.1), so Adam sees the same dynamic range in every layer.
* :class:`MappingNetwork`: z (N, z) -> pixel norm -> 8 x (EqualLinear, LeakyReLU 0.2) -> w (N, w).
* :func:`modulate`: w'_{ijk} = s_i w_{ijk}; demodulated w''_{ijk} = w'_{ijk} / sqrt(sum_{i,k} w'^2 + eps)
  (Eq. 1 and 3; i input channel, j output channel, k spatial tap).
* :func:`modconv_grouped`: one grouped convolution with the batch folded into groups (Sec. 2.2,
  "grouped convolutions"); :func:`modconv_loop`: the same, one ``F.conv2d`` per sample.
* :class:`NoiseInjection`: x + scale_c * noise, with per-channel scale initialised to zero.

Shapes: x (N, Cin, H, W); weight (Cout, Cin, k, k); styles s (N, Cin); output (N, Cout, H, W).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualLinear(nn.Module):
    """(N, in) -> (N, out) with the weight N(0, 1) scaled by 1/sqrt(in) at run time."""

    def __init__(self, d_in: int, d_out: int, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in))
        self.bias = nn.Parameter(torch.full((d_out,), float(bias_init)))
        self.scale = 1 / math.sqrt(d_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class MappingNetwork(nn.Module):
    """z (N, z_dim) -> w (N, w_dim): pixel norm, then ``layers`` EqualLinear + LeakyReLU(0.2)."""

    def __init__(self, z_dim: int = 512, w_dim: int = 512, layers: int = 8):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.layers = nn.ModuleList(EqualLinear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # pixel norm of z
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
        return h


def modulate(weight: torch.Tensor, s: torch.Tensor, demodulate: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample weights (N, Cout, Cin, k, k) from weight (Cout, Cin, k, k) and styles s (N, Cin)."""
    w = weight[None] * s[:, None, :, None, None]  # (N, Cout, Cin, k, k)
    if demodulate:
        w = w * torch.rsqrt(w.square().sum(dim=(2, 3, 4), keepdim=True) + eps)  # one norm per (n, j)
    return w


def modconv_grouped(x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor, demodulate: bool = True) -> torch.Tensor:
    """Modulated conv as one grouped convolution (groups = N), 'same' padding."""
    n, cin, h, wd = x.shape
    w = modulate(weight, s, demodulate)  # (N, Cout, Cin, k, k)
    cout, k = w.shape[1], w.shape[-1]
    out = F.conv2d(x.reshape(1, n * cin, h, wd), w.reshape(n * cout, cin, k, k), padding=k // 2, groups=n)
    return out.view(n, cout, *out.shape[-2:])  # (1, N*Cout, H, W) -> (N, Cout, H, W)


def modconv_loop(x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor, demodulate: bool = True) -> torch.Tensor:
    """The reference: one ``F.conv2d`` per sample with that sample's weights."""
    w = modulate(weight, s, demodulate)
    k = w.shape[-1]
    return torch.cat([F.conv2d(x[i : i + 1], w[i], padding=k // 2) for i in range(x.shape[0])])


class NoiseInjection(nn.Module):
    """x (N, C, H, W) + scale (C,) * noise (N, 1, H, W); scale starts at zero."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.scale.view(1, -1, 1, 1) * noise
