"""Wrong GAN parts: the mutants of the ``gans`` drills, each one a plausible mistake.

Each mirrors a right piece in ``models/`` (``gan``, ``image_gan``, ``stylegan``) or a drill's
own loss; the drill that declares it swaps it in, and its check must catch it
(``tests/tasks/test_mutants.py``). Wrong losses that replace a drill's method are
``staticmethod`` objects (callable as plain functions too), so a mutant's patch can name them
directly. Images are (N, C, S, S) in [-1, 1] unless said otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.gan import DCDiscriminator, MLPDiscriminator, MLPGenerator
from models.image_gan import ImagePool
from models.stylegan import MappingNetwork, modconv_grouped


class PlainMapping(MappingNetwork):
    """WRONG: the mapping network without the equalised learning rate (weights used as stored,
    N(0, 1), instead of scaled by 1/sqrt(fan_in) at every call)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        for layer in self.layers:
            layer.scale = 1.0


def demod_over_out_channels(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """WRONG: StyleGAN2 demodulation normalising over the *output* channels (dims Cout, k, k)
    instead of over (Cin, k, k) per output channel; x (N, Cin, H, W), w (Cout, Cin, k, k), s (N, Cin)."""
    wm = w[None] * s[:, None, :, None, None]  # (N, Cout, Cin, k, k)
    wm = wm * torch.rsqrt(wm.square().sum(dim=(1, 3, 4), keepdim=True) + 1e-8)  # over Cout: wrong
    k = w.shape[-1]
    return torch.cat([F.conv2d(x[i : i + 1], wm[i], padding=k // 2) for i in range(x.shape[0])])


def first_style_for_all(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """WRONG: the grouped modulated convolution with every sample given sample 0's style."""
    return modconv_grouped(x, w, s[:1].expand_as(s))


@staticmethod
def kl_sigma_is_var(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """WRONG: the VAE's KL(N(mu, sigma) || N(0, I)) with exp(log_var) taken as sigma (it is sigma^2);
    mu, log_var (N, z) -> batch-mean scalar."""
    return -0.5 * (1 + 2 * log_var - mu**2 - torch.exp(2 * log_var)).sum(1).mean()


@staticmethod
def sigma_detached(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """WRONG: z = mu + sigma.detach() * eps: no gradient reaches log sigma^2 through the sample."""
    return mu + torch.exp(0.5 * log_var).detach() * eps


@staticmethod
def bce_gan(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """WRONG for CycleGAN: the original cross-entropy GAN loss where the paper uses least squares
    (Mao et al. 2017); patch logits of any shape, target 1 if ``real`` else 0 -> scalar."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


class NoHistory(ImagePool):
    """WRONG: an image pool that stores fakes but always returns the newest ones (no history)."""

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        super().query(batch)
        return batch.detach()


class BNCritic(MLPDiscriminator):
    """WRONG for WGAN-GP: batch norm after the critic's first layer; the gradient penalty is per
    sample, and batch norm makes each sample's score depend on the others (Gulrajani et al. 2017, Sec. 4)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.net.insert(1, nn.BatchNorm1d(cfg.width))


class NoTanhGenerator(MLPGenerator):
    """WRONG: the MLP generator with a linear output (no tanh): samples leave the data range [-1, 1]."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.net[-1] = nn.Identity()


@staticmethod
def saturating_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """WRONG: the minimax generator loss log(1 - D(G(z))), minimised; its gradient vanishes when D
    rejects the fakes confidently (Goodfellow et al. 2014, Sec. 3). Logits (N,) -> scalar."""
    return torch.log1p(-torch.sigmoid(fake_logits)).mean()


class BNInputD(DCDiscriminator):
    """WRONG: the DCGAN discriminator with batch norm on its input layer (Radford et al. 2015,
    Sec. 3: batch norm on every layer "resulted in sample oscillation and model instability")."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.body[1] = nn.Sequential(nn.BatchNorm2d(cfg.width), nn.LeakyReLU(0.2))


@staticmethod
def no_init(module: nn.Module) -> nn.Module:
    """WRONG: the DCGAN init skipped (``models.gan.dcgan_init``): ``module`` is returned with
    PyTorch's default (Kaiming-uniform) weights instead of N(0, 0.02)."""
    return module
