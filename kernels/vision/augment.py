"""Seeded, batched image augmentation: horizontal flip and random crop with padding.

The CIFAR recipe of He et al. 2016 (Sec. 4.2: "4 pixels are padded on each side, and a
32x32 crop is randomly sampled from the padded image or its horizontal flip") and of
torchvision's ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``, done for a whole
batch with tensor indexing instead of a Python loop per image.

Both transforms are label-preserving by construction (they never see the labels; the
batch helper returns the labels it was given) and seeded: every random draw comes from
the ``torch.Generator`` passed in, so the same seed gives the same flips and crops on
every machine (draws happen on the CPU generator, then move to the images' device).

Images: float or uint8 (N, C, H, W); outputs have the input's shape, dtype and device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_images(images: torch.Tensor, fn: str) -> None:
    if images.dim() != 4:
        raise ValueError(f"{fn}: images must be (N, C, H, W), got shape {tuple(images.shape)}")


def hflip(images: torch.Tensor) -> torch.Tensor:
    """Mirror left-right: out[..., x] = images[..., W-1-x]. Applying it twice is the identity."""
    _check_images(images, "hflip")
    return images.flip(-1)


def random_flip(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each image independently with probability ``p``.

    Returns (images (N, C, H, W), flipped bool (N,)). Raises ValueError for p outside [0, 1].
    """
    _check_images(images, "random_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_flip: p must be in [0, 1], got {p}")
    flipped = torch.rand(images.shape[0], generator=generator) < p  # (N,) on CPU
    mask = flipped.to(images.device).view(-1, 1, 1, 1)
    return torch.where(mask, images.flip(-1), images), flipped


def crop_offsets(n: int, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Top-left corners (N, 2) = (dy, dx), each uniform in 0..2*padding, of the crops taken
    from the padded images (dy = dx = padding is the uncropped, centred image)."""
    return torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)


def crop_with_padding(images: torch.Tensor, offsets: torch.Tensor, padding: int, fill: float = 0.0) -> torch.Tensor:
    """Pad each side by ``padding`` with ``fill`` and cut the (H, W) window at ``offsets``.

    Args:
        images: (N, C, H, W).
        offsets: int (N, 2) of (dy, dx) in 0..2*padding (see :func:`crop_offsets`).
    Returns (N, C, H, W): out[n, c, y, x] = padded[n, c, y + dy_n, x + dx_n].
    Raises ValueError for a bad offsets shape or an offset outside 0..2*padding.
    """
    _check_images(images, "crop_with_padding")
    n, c, h, w = images.shape
    if tuple(offsets.shape) != (n, 2):
        raise ValueError(f"crop_with_padding: offsets must be ({n}, 2), got {tuple(offsets.shape)}")
    if padding < 0 or (n and (int(offsets.min()) < 0 or int(offsets.max()) > 2 * padding)):
        raise ValueError(f"crop_with_padding: offsets must lie in 0..{2 * padding} (padding={padding})")
    padded = F.pad(images, (padding,) * 4, value=fill)  # (N, C, H+2p, W+2p)
    off = offsets.to(images.device)
    rows = off[:, 0, None] + torch.arange(h, device=images.device)  # (N, H)
    cols = off[:, 1, None] + torch.arange(w, device=images.device)  # (N, W)
    batch = torch.arange(n, device=images.device)[:, None, None]  # (N, 1, 1)
    # advanced indices around a slice put their broadcast dims first: (N, H, W, C)
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)


def crop_by_slicing(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    """The reference of :func:`crop_with_padding` (zero fill): each image padded, then sliced
    at its own (dy, dx), one image at a time in Python. Same arguments and result; for checks."""
    H, W = images.shape[-2:]
    padded = F.pad(images, (padding,) * 4)  # (N, C, H + 2p, W + 2p)
    return torch.stack([padded[i, :, dy : dy + H, dx : dx + W] for i, (dy, dx) in enumerate(offsets.tolist())])


def random_crop(
    images: torch.Tensor, generator: torch.Generator, padding: int = 4, fill: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop with padding; returns (images (N, C, H, W), offsets (N, 2))."""
    offsets = crop_offsets(images.shape[0], padding, generator)
    return crop_with_padding(images, offsets, padding, fill), offsets


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    *,
    padding: int = 4,
    flip_p: float = 0.5,
    fill: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop with padding, then flip: the standard CIFAR augmentation of a batch.

    Returns (augmented images (N, C, H, W), labels (N,) unchanged). Crops are drawn
    before flips from ``generator``, so a seed fixes both.
    """
    if labels.shape[:1] != images.shape[:1]:
        raise ValueError(f"augment_batch: {images.shape[0]} images but {labels.shape[0]} labels")
    out, _ = random_crop(images, generator, padding, fill) if padding else (images, None)
    out, _ = random_flip(out, generator, flip_p)
    return out, labels


def locate_flip_crop(out: torch.Tensor, images: torch.Tensor, padding: int) -> list[tuple[int, int, int] | None]:
    """Which flip and crop of its zero-padded original each augmented image is.

    ``out`` and ``images``: (N, C, H, W). For image i, the first (flip, dy, dx) (flip 0 or 1,
    offsets 0..2*padding) whose crop of ``images[i]`` padded by ``padding`` zeros (and flipped
    when flip is 1) equals ``out[i]`` exactly; None when no such crop exists (not a flip +
    pad-crop). Brute force, (2 * (2 * padding + 1)^2) comparisons per image: for checks.
    """
    H, W = images.shape[-2:]
    padded = F.pad(images, (padding,) * 4)  # (N, C, H + 2p, W + 2p)
    found: list[tuple[int, int, int] | None] = []
    for i in range(images.shape[0]):
        views = (padded[i], padded[i].flip(-1))
        hits = [
            (f, dy, dx)
            for f in (0, 1)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if torch.equal(views[f][:, dy : dy + H, dx : dx + W], out[i])
        ]
        found.append(hits[0] if hits else None)
    return found
