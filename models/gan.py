"""Small GAN and VAE networks for 8x8 digits and 32x32 images, with conditional variants.

Images are float (N, C, S, S) in [-1, 1] (the generators end in tanh); noise z is (N, z_dim);
labels y are int64 (N,) in 0..classes-1 (conditional models only, ``classes > 0``).

* :class:`MLPGenerator` / :class:`MLPDiscriminator`: the fully connected pair of Goodfellow
  et al. 2014 at digits size (ReLU in G, LeakyReLU 0.2 in D, one logit out).
* :class:`DCGenerator` / :class:`DCDiscriminator`: Radford et al. 2015 ("DCGAN", arXiv:
  1511.06434, Sec. 3): no pooling (strided and fractionally strided convolutions), batch
  norm everywhere except the generator's output and the discriminator's input layer, ReLU
  in G with tanh output, LeakyReLU 0.2 in D. ``batchnorm=False`` drops BN from D (the
  WGAN-GP critic: Gulrajani et al. 2017, Sec. 4, penalise per-sample gradients).
* :func:`dcgan_init`: weights N(0, 0.02), BN scale N(1, 0.02), biases 0 (Radford et al. Sec. 4).
* :class:`VAE`: an MLP encoder to (mu, log_var) and a decoder with tanh output (Kingma &
  Welling 2014), for the GAN-vs-VAE comparison.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class GanConfig:
    """Sizes of a generator/discriminator pair."""

    size: int = 8
    """image side in pixels: 8 (digits) or 32 (DCGAN conv stack: 4 -> 8 -> 16 -> 32)"""
    channels: int = 1
    """image channels"""
    z_dim: int = 32
    """noise dimension"""
    width: int = 128
    """hidden units (MLP) or ngf = ndf, the channels of the widest conv layer / 4 (conv)"""
    classes: int = 0
    """number of labels a conditional model takes; 0 for an unconditional one"""


def dcgan_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Radford et al. 2015 init in place: conv/linear weights N(0, std), BN weight N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


class _Cond(nn.Module):
    """Concatenates a learned label embedding (dim = classes) to a flat input, if conditional."""

    def __init__(self, classes: int):
        super().__init__()
        self.embed = nn.Embedding(classes, classes) if classes else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return h
        if y is None:
            raise ValueError("a conditional model needs labels y (N,) int64")
        return torch.cat([h, self.embed(y)], dim=1)  # (N, F + classes)


class MLPGenerator(nn.Module):
    """z (N, z_dim) [, y (N,)] -> images (N, C, S, S) in [-1, 1]."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg, self.cond = cfg, _Cond(cfg.classes)
        out = cfg.channels * cfg.size * cfg.size
        self.net = nn.Sequential(
            nn.Linear(cfg.z_dim + cfg.classes, cfg.width),
            nn.ReLU(),
            nn.Linear(cfg.width, cfg.width),
            nn.ReLU(),
            nn.Linear(cfg.width, out),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cfg
        return self.net(self.cond(z, y)).view(-1, c.channels, c.size, c.size)  # (N, C, S, S)


class MLPDiscriminator(nn.Module):
    """images (N, C, S, S) [, y (N,)] -> logits (N,) (no sigmoid: the loss applies it)."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cond = _Cond(cfg.classes)
        self.net = nn.Sequential(
            nn.Linear(cfg.channels * cfg.size * cfg.size + cfg.classes, cfg.width),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.width, cfg.width),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.width, 1),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.cond(x.flatten(1), y)).squeeze(1)  # (N, C*S*S) -> (N,)


def _stages(size: int) -> int:
    if size not in (8, 16, 32, 64):
        raise ValueError(f"DCGAN stack: image side {size} is not one of 8, 16, 32, 64")
    return {8: 1, 16: 2, 32: 3, 64: 4}[size]


class DCGenerator(nn.Module):
    """z (N, z_dim) [, y] -> (N, C, S, S): project to (4w·2^k, 4, 4), then k stride-2 transposed convs."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg, self.cond = cfg, _Cond(cfg.classes)
        k = _stages(cfg.size)
        ch = cfg.width * 2 ** (k - 1)
        self.project = nn.Sequential(
            nn.ConvTranspose2d(cfg.z_dim + cfg.classes, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU()
        )
        layers: list[nn.Module] = []
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, cfg.channels, 4, 2, 1), nn.Tanh()]  # output: no BN
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.cond(z, y)[:, :, None, None]  # (N, z_dim + classes, 1, 1)
        return self.body(self.project(h))  # (N, C, S, S)


class DCDiscriminator(nn.Module):
    """(N, C, S, S) [, y] -> logits (N,): k stride-2 convs (no BN on the first), a 4x4 conv to one logit.

    A conditional discriminator takes the label as ``classes`` constant one-hot planes.
    ``batchnorm=False`` gives the WGAN-GP critic (no BN, no sigmoid).
    """

    def __init__(self, cfg: GanConfig, batchnorm: bool = True):
        super().__init__()
        self.cfg = cfg
        k = _stages(cfg.size)
        ch = cfg.width
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels + cfg.classes, ch, 4, 2, 1), nn.LeakyReLU(0.2)]
        for _ in range(k - 1):
            norm: nn.Module = nn.BatchNorm2d(ch * 2) if batchnorm else nn.Identity()
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not batchnorm), norm, nn.LeakyReLU(0.2)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0)]  # (N, ch, 4, 4) -> (N, 1, 1, 1)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.classes:
            if y is None:
                raise ValueError("a conditional discriminator needs labels y (N,) int64")
            planes = nn.functional.one_hot(y, self.cfg.classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(-1, -1, *x.shape[-2:])], dim=1)  # (N, C + classes, S, S)
        return self.body(x).flatten()  # (N,)


class VAE(nn.Module):
    """x (N, C, S, S) -> (reconstruction (N, C, S, S) in [-1, 1], mu (N, z), log_var (N, z))."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.channels * cfg.size * cfg.size
        self.enc = nn.Sequential(nn.Linear(d, cfg.width), nn.ReLU(), nn.Linear(cfg.width, 2 * cfg.z_dim))
        self.dec = nn.Sequential(
            nn.Linear(cfg.z_dim, cfg.width), nn.ReLU(), nn.Linear(cfg.width, cfg.width), nn.ReLU(),
            nn.Linear(cfg.width, d), nn.Tanh(),
        )  # fmt: skip

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.enc(x.flatten(1)).chunk(2, dim=1)  # (N, 2z) -> 2 x (N, z)
        return mu, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        return self.dec(z).view(-1, c.channels, c.size, c.size)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        mu, log_var = self.encode(x)
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + torch.exp(0.5 * log_var) * eps  # reparameterisation: sigma = exp(log_var / 2)
        return self.decode(z), mu, log_var
