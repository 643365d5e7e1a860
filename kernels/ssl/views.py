"""Two random views of each 8x8 digit, for contrastive and BYOL training on scikit-learn's digits.

SimCLR (Chen et al., ICML 2020, section 3 and appendix A) builds views by random crop + resize,
colour distortion and blur; at 8x8 there is no room to resize, so the views here are the small-image
counterparts: a random crop with 1 pixel of padding (``kernels.vision.augment.random_crop``, a shift
of up to 1 pixel), a random brightness scale and additive Gaussian noise, and cutout of a random
3x3 patch. None of them moves a digit to another class, which is all a view must guarantee.

Input: images float (N, 64) or (N, 1, 8, 8) in [0, 1]; output float (N, 64), same dtype/device.
"""

from __future__ import annotations

import torch

from kernels.vision.augment import random_crop


def digit_view(x: torch.Tensor, generator: torch.Generator, noise: float = 0.1, cutout: int = 3) -> torch.Tensor:
    """One random view of each digit (all draws from ``generator``, on the CPU).

    Raises ValueError when ``x`` does not hold 64 pixels per image.
    """
    if x.dim() == 0 or x.numel() != x.shape[0] * 64:
        raise ValueError(f"digit_view: expected (N, 64) or (N, 1, 8, 8) digits, got {tuple(x.shape)}")
    n = x.shape[0]
    img = x.reshape(n, 1, 8, 8)  # (N, 64) -> (N, 1, 8, 8)
    img, _ = random_crop(img, generator, padding=1)
    scale = 0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=generator)  # brightness in [0.6, 1.4]
    img = img * scale.to(img) + noise * torch.randn(img.shape, generator=generator).to(img)
    if cutout:
        corner = torch.randint(0, 8 - cutout + 1, (n, 2), generator=generator).to(img.device)  # (N, 2)
        r = torch.arange(8, device=img.device)
        rows = (r >= corner[:, :1]) & (r < corner[:, :1] + cutout)  # (N, 8)
        cols = (r >= corner[:, 1:]) & (r < corner[:, 1:] + cutout)  # (N, 8)
        img = img.masked_fill((rows[:, :, None] & cols[:, None, :])[:, None], 0.0)  # (N, 1, 8, 8)
    return img.reshape(n, 64)  # (N, 1, 8, 8) -> (N, 64)
