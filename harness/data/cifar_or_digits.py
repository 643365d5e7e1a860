"""32x32 training images for the image GANs: real CIFAR-10 when it is under --data-dir, else digits.

CIFAR-10 (Krizhevsky 2009) never downloads; without it the drills train offline on sklearn's
1,797 real 8x8 digits upsampled to 32x32 (bilinear), which the digits-feature FD
(``harness.gan_metric``) can still score after area-downsampling them back to 8x8.
Images are float (N, C, 32, 32) in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.data.cifar import load_cifar10
from harness.data.sources import resolve
from harness.gan_metric import digits_images


def upsampled_digits(size: int = 32) -> torch.Tensor:
    """sklearn's digits (1797, 1, 8, 8) in [-1, 1], bilinearly upsampled to (1797, 1, size, size)."""
    return F.interpolate(digits_images()[0], size=(size, size), mode="bilinear", align_corners=False)


def cifar_or_digits(n: int) -> tuple[torch.Tensor, str]:
    """The first ``n`` CIFAR-10 training images (N, 3, 32, 32) when its python batches are under
    --data-dir (``cifar10/``), else :func:`upsampled_digits` (1797, 1, 32, 32); with a description
    of the source for captions and notes."""
    src = resolve("cifar10")
    if src.kind == "files" and src.path is not None:
        imgs = load_cifar10(src.path, "train").images[:n]  # uint8 (N, 3, 32, 32)
        return imgs.float() / 127.5 - 1, f"CIFAR-10 ({len(imgs):,} training images at {src.path})"
    return upsampled_digits(), "digits upsampled"
