"""Images with a planted discriminative region: where an explanation method must look.

A class-1 image is noise with one bright square at a random place; a class-0 image is the
same kind of noise without it. A network that separates the two can only use the square,
so a saliency or class-activation map (Grad-CAM, ``cnn.grad_cam``) is right exactly when it
peaks inside the square.
"""

from __future__ import annotations

import torch


def planted_patch_images(
    n: int, size: int, patch: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images (N, 1, S, S) float32, labels (N,) int64, patch top-left corners (N, 2) int64).

    Pixels are uniform in [0, 0.5); odd-indexed images (label 1) get a ``patch`` x ``patch``
    square of 1.0 at a random place (corners drawn for every image, used for label 1 only).

    Raises:
        ValueError: ``patch`` larger than ``size``.
    """
    if not 0 < patch <= size:
        raise ValueError(f"planted_patch_images: need 0 < patch <= size, got patch={patch}, size={size}")
    x = torch.rand(n, 1, size, size, generator=g) * 0.5
    y = torch.arange(n) % 2
    corners = torch.randint(0, size - patch + 1, (n, 2), generator=g)
    for i in torch.nonzero(y).flatten().tolist():
        r, c = corners[i].tolist()
        x[i, 0, r : r + patch, c : c + patch] = 1.0
    return x, y, corners
