"""Progressive growing (Karras et al., "Progressive growing of GANs", ICLR 2018): the generator side.

* :class:`PixelNorm`: b = a / sqrt(mean_c a_c^2 + 1e-8) per pixel (Sec. 4.2);
* :func:`minibatch_stddev`: the std of each feature and pixel over a group of samples, averaged
  to one number per group and appended as an extra constant channel (Sec. 3);
* :class:`ProGenerator`: z -> 4x4 block, then one block per stage (nearest 2x upsample, two 3x3
  convs with LeakyReLU 0.2 and pixel norm), a 1x1 ``to_rgb`` per resolution. While stage s
  fades in (Sec. 2, Fig. 2): out = (1 - alpha) * up(to_rgb[s-1](h)) + alpha * to_rgb[s](block_s(h)).
* :func:`alpha_at`: alpha rises linearly from 0 to 1 over ``fade_steps`` steps of a stage.

Shapes: z (N, z_dim); images (N, C, R, R) with R = 4 * 2^stage.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PixelNorm(nn.Module):
    """(N, C, H, W) -> the same, each pixel's channel vector scaled to unit RMS."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """(N, C, H, W) -> (N, C + 1, H, W); N must be divisible by ``min(group, N)``.

    Raises:
        ValueError: a batch that does not split into groups.
    """
    n, c, h, w = x.shape
    g = min(group, n)
    if n % g:
        raise ValueError(f"minibatch_stddev: batch {n} is not divisible by the group size {g}")
    y = x.view(g, n // g, c, h, w)  # (G, M, C, H, W): sample i is in group slot i // M
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (M, C, H, W): over the group
    stat = std.mean(dim=(1, 2, 3)).view(n // g, 1, 1, 1).repeat(g, 1, h, w)  # (N, 1, H, W)
    return torch.cat([x, stat], dim=1)


def alpha_at(step: int, fade_steps: int) -> float:
    """Fade-in weight at ``step`` of a stage: step / fade_steps, clamped to [0, 1]."""
    return min(1.0, max(0.0, step / fade_steps))


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2), PixelNorm(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2), PixelNorm(),
    )  # fmt: skip


class ProGenerator(nn.Module):
    """A generator that grows from 4x4 to 4 * 2^stages pixels."""

    def __init__(self, z_dim: int = 32, width: int = 32, stages: int = 3, channels: int = 1):
        super().__init__()
        self.z_dim, self.stages = z_dim, stages
        self.start = nn.Sequential(nn.Linear(z_dim, width * 16), nn.LeakyReLU(0.2))
        self.first = _block(width, width)
        self.blocks = nn.ModuleList(_block(width, width) for _ in range(stages))
        self.to_rgb = nn.ModuleList(nn.Conv2d(width, channels, 1) for _ in range(stages + 1))

    def resolutions(self) -> list[int]:
        return [4 * 2**s for s in range(self.stages + 1)]

    def features(self, z: torch.Tensor, stage: int) -> torch.Tensor:
        """Features (N, width, R, R) after ``stage`` upsampling blocks (all at full weight)."""
        h = self.first(PixelNorm()(self.start(z).view(z.shape[0], -1, 4, 4)))  # (N, width, 4, 4)
        for s in range(stage):
            h = self.blocks[s](F.interpolate(h, scale_factor=2, mode="nearest"))
        return h

    def forward(self, z: torch.Tensor, stage: int, alpha: float = 1.0) -> torch.Tensor:
        if not 0 <= stage <= self.stages:
            raise ValueError(f"stage {stage} outside 0..{self.stages}")
        if stage == 0 or alpha >= 1:
            return self.to_rgb[stage](self.features(z, stage))
        h = self.features(z, stage - 1)  # (N, width, R/2, R/2)
        old = F.interpolate(self.to_rgb[stage - 1](h), scale_factor=2, mode="nearest")
        new = self.to_rgb[stage](self.blocks[stage - 1](F.interpolate(h, scale_factor=2, mode="nearest")))
        return (1 - alpha) * old + alpha * new
