"""Real texture patches from the images scikit-image ships (brick, grass, gravel): unpaired domains.

scikit-image bundles three 512x512 grey texture photographs (``skimage.data.brick``, ``grass``,
``gravel``; public-domain photos, see the scikit-image data docs). Random crops of two families
make the two unpaired domains of the CycleGAN drill: real photos, not CIFAR.
"""

from __future__ import annotations

import functools

import torch

TEXTURES = ("brick", "grass", "gravel")


@functools.lru_cache(maxsize=3)
def _image(name: str) -> torch.Tensor:
    import skimage.data  # lazy: an optional dependency (the ``data`` extra)

    return torch.from_numpy(getattr(skimage.data, name)().astype("float32") / 127.5 - 1)  # (512, 512) in [-1, 1]


def texture_patches(name: str, n: int, side: int = 32, seed: int = 0) -> torch.Tensor:
    """``n`` random ``side`` x ``side`` crops of texture ``name``: float32 (n, 1, side, side) in [-1, 1].

    Raises:
        ValueError: an unknown texture name or a side over 512.
        ModuleNotFoundError: scikit-image is not installed (``pip install scikit-image``).
    """
    if name not in TEXTURES:
        raise ValueError(f"texture_patches: unknown texture {name!r}; choose one of {TEXTURES}")
    if not 0 < side <= 512:
        raise ValueError(f"texture_patches: side {side} must be in 1..512")
    img, g = _image(name), torch.Generator().manual_seed(seed)
    ys = torch.randint(0, 513 - side, (n,), generator=g).tolist()
    xs = torch.randint(0, 513 - side, (n,), generator=g).tolist()
    return torch.stack([img[y : y + side, x : x + side] for y, x in zip(ys, xs)])[:, None]  # (n, 1, side, side)


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@functools.lru_cache(maxsize=4)
def _photo(name: str) -> torch.Tensor:
    import skimage.data

    rgb = torch.from_numpy(getattr(skimage.data, name)().astype("float32") / 127.5 - 1)  # (H, W, 3) in [-1, 1]
    return rgb.permute(2, 0, 1).contiguous()  # (3, H, W)


def photo_patches(name: str, n: int, side: int = 32, seed: int = 0) -> torch.Tensor:
    """``n`` random RGB crops of a photo scikit-image ships: float32 (n, 3, side, side) in [-1, 1].

    Real photos, not CIFAR (astronaut, coffee, chelsea, rocket).

    Raises:
        ValueError: an unknown photo name or a side larger than the photo.
    """
    if name not in PHOTOS:
        raise ValueError(f"photo_patches: unknown photo {name!r}; choose one of {PHOTOS}")
    img, g = _photo(name), torch.Generator().manual_seed(seed)
    h, w = img.shape[1:]
    if not 0 < side <= min(h, w):
        raise ValueError(f"photo_patches: side {side} must be in 1..{min(h, w)} for {name}")
    ys = torch.randint(0, h - side + 1, (n,), generator=g).tolist()
    xs = torch.randint(0, w - side + 1, (n,), generator=g).tolist()
    return torch.stack([img[:, y : y + side, x : x + side] for y, x in zip(ys, xs)])
