"""Image-to-image GAN parts: a small ResNet generator, the PatchGAN discriminator, the image pool.

* :class:`ResnetGenerator`: conv 7x7 -> 2 stride-2 convs -> ``blocks`` residual blocks -> 2
  transposed convs -> conv 7x7 -> tanh, instance norm (Zhu et al. 2017, CycleGAN, appendix 7.2,
  after Johnson et al. 2016), at a small width; (N, C, S, S) -> (N, C, S, S), S divisible by 4.
* :class:`PatchGAN`: the 70x70 PatchGAN of Isola et al. 2017 (pix2pix, appendix 6.1.2):
  C64-C128-C256-C512 with 4x4 convs (strides 2, 2, 2, 1; no norm on the first), then a 4x4
  conv to one channel, LeakyReLU 0.2; a 256x256 input gives a 30x30 map of patch logits.
  :func:`receptive_field` computes the patch side (70) from the layer list.
* :class:`ImagePool`: the 50-image history of Shrivastava et al. 2017 used by CycleGAN (Sec. 4):
  until full, store and return each image; then with probability 1/2 return a stored image and
  put the new one in its place, else return the new one.
"""

from __future__ import annotations

import torch
from torch import nn


class _Res(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(ch), nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(ch),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(N, C, S, S) in [-1, 1] -> (N, C, S, S) in [-1, 1]."""

    def __init__(self, channels: int = 1, width: int = 16, blocks: int = 2):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 7, padding=3, padding_mode="reflect"), nn.InstanceNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.InstanceNorm2d(4 * w), nn.ReLU(),
            *[_Res(4 * w) for _ in range(blocks)],
            nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, channels, 7, padding=3, padding_mode="reflect"), nn.Tanh(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchGAN(nn.Module):
    """(N, C, S, S) -> patch logits (N, 1, S', S'); ``width`` 64 is the published 70x70 PatchGAN."""

    def __init__(self, channels: int = 1, width: int = 64):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.InstanceNorm2d(4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 8 * w, 4, 1, 1), nn.InstanceNorm2d(8 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(8 * w, 1, 4, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(module: nn.Module) -> int:
    """Side in input pixels seen by one output unit of a chain of convolutions: r += (k - 1) * jump."""
    r, jump = 1, 1
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            r += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    return r


class ImagePool:
    """A history of at most ``size`` generated images (detached copies), seeded by ``generator``."""

    def __init__(self, size: int = 50, generator: torch.Generator | None = None):
        self.size, self.images, self.g = size, [], generator or torch.Generator().manual_seed(0)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W): each image replaced by a stored one with probability 1/2 once full."""
        out = []
        for img in batch.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand((), generator=self.g)) < 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.g))
                out.append(self.images[i])
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)


class UNet(nn.Module):
    """pix2pix's U-Net generator (Isola et al. 2017, appendix 6.1.1) at ``depth`` levels.

    (N, Cin, S, S) -> (N, Cout, S, S), S divisible by 2^depth. Encoder: 4x4 stride-2 convs
    (no norm on the first), LeakyReLU 0.2; decoder: 4x4 stride-2 transposed convs, ReLU, each
    fed the previous output concatenated with the encoder's output of the same resolution (the
    skip). ``skips`` is False for the plain encoder-decoder the paper compares against.
    After a forward pass, ``last_skips`` lists (decoder tensor shape, skip shape) per join.
    """

    def __init__(self, cin: int = 1, cout: int = 3, width: int = 16, depth: int = 4, skips: bool = True):
        super().__init__()
        self.skips = skips
        chans = [min(width * 2**i, width * 8) for i in range(depth)]  # C64-C128-C256-C512-C512...
        self.down = nn.ModuleList()
        prev = cin
        for i, c in enumerate(chans):
            norm: nn.Module = nn.Identity() if i == 0 else nn.BatchNorm2d(c)
            self.down.append(nn.Sequential(nn.Conv2d(prev, c, 4, 2, 1), norm, nn.LeakyReLU(0.2)))
            prev = c
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            c_in = chans[i] * (2 if skips and i < depth - 1 else 1)
            c_out = chans[i - 1] if i > 0 else cout
            last = i == 0
            self.up.append(
                nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.Tanh())
                if last
                else nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU())
            )
        self.last_skips: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for layer in self.down:
            x = layer(x)
            feats.append(x)
        self.last_skips = []
        h = feats[-1]
        for j, layer in enumerate(self.up):
            if j > 0 and self.skips:
                skip = feats[-1 - j]
                self.last_skips.append((tuple(h.shape), tuple(skip.shape)))
                h = torch.cat([h, skip], dim=1)  # (N, C_up + C_skip, R, R)
            h = layer(h)
        return h


class SRNet(nn.Module):
    """A small ESPCN/SRResNet-style x``scale`` super-resolution net (Shi et al. 2016; Ledig et al. 2017).

    (N, C, H, W) -> (N, C, scale*H, scale*W): convs at low resolution, a conv to C*scale^2 channels,
    ``nn.PixelShuffle(scale)``; with ``global_skip`` the net predicts the residual over bicubic
    upsampling and its last conv starts at zero (the untrained net *is* bicubic).
    """

    def __init__(self, channels: int = 1, width: int = 32, scale: int = 4, global_skip: bool = True):
        super().__init__()
        self.scale, self.global_skip = scale, global_skip
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, channels * scale * scale, 3, padding=1),
        )  # fmt: skip
        self.shuffle = nn.PixelShuffle(scale)  # (N, C*s^2, H, W) -> (N, C, s*H, s*W)
        if global_skip:
            nn.init.zeros_(self.body[-1].weight)
            nn.init.zeros_(self.body[-1].bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        out = self.shuffle(self.body(lr))
        if self.global_skip:
            out = out + nn.functional.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out
