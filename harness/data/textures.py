"""Real texture patches from the images scikit-image ships (brick, grass, gravel): unpaired domains.

scikit-image bundles three 512x512 grey texture photographs (``skimage.data.brick``, ``grass``,
``gravel``; public-domain photos, see the scikit-image data docs). Random crops of two families
make the two unpaired domains of the CycleGAN drill: real photos, not CIFAR. Its colour photos
give Pix2Pix's pairs (:func:`photo_patches`); scikit-learn's two sample photos give the
super-resolution drill's low/high-resolution pairs (:func:`sr_pairs`, :func:`sr_split`).
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


SAMPLE_PHOTOS = ("china.jpg", "flower.jpg")


@functools.lru_cache(maxsize=2)
def _sample_photo(name: str) -> torch.Tensor:
    from sklearn.datasets import load_sample_image

    return torch.from_numpy(load_sample_image(name).astype("float32")).mean(-1) / 127.5 - 1  # (427, 640) in [-1, 1]


def sr_pairs(name: str, n: int, side: int = 32, seed: int = 0, scale: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high): ``n`` random grey crops of a photo scikit-learn ships, float32 (n, 1, side, side)
    in [-1, 1], and their bicubic, antialiased x1/``scale`` downscale (n, 1, side/scale, side/scale),
    the degradation super-resolution benchmarks use.

    Raises:
        ValueError: an unknown photo name, or a side larger than the photo or not divisible by ``scale``.
    """
    import torch.nn.functional as F

    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"sr_pairs: unknown photo {name!r}; choose one of {SAMPLE_PHOTOS}")
    img, g = _sample_photo(name), torch.Generator().manual_seed(seed)
    if not 0 < side <= min(img.shape) or side % scale:
        raise ValueError(f"sr_pairs: side {side} must be in 1..{min(img.shape)} and divisible by {scale}")
    ys = torch.randint(0, img.shape[0] - side + 1, (n,), generator=g).tolist()
    xs = torch.randint(0, img.shape[1] - side + 1, (n,), generator=g).tolist()
    high = torch.stack([img[y : y + side, x : x + side] for y, x in zip(ys, xs)])[:, None]  # (n, 1, side, side)
    low = F.interpolate(high, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return low, high


def sr_split(
    side: int = 32, seed: int = 0, scale: int = 4
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """The super-resolution drill's data, (train, test), each a (low, high) pair from :func:`sr_pairs`:
    1,024 crops of china.jpg to train on (seed ``seed``) and 256 of flower.jpg held out (``seed + 1``)."""
    return sr_pairs("china.jpg", 1024, side, seed, scale), sr_pairs("flower.jpg", 256, side, seed + 1, scale)
