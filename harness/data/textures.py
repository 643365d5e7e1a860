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
