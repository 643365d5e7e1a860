"""CIFAR-10 images for training tasks: real python batches when found, else the stand-in.

Shared by ``cnn.cifar10_cnn`` and ``m2.cifar10_own_adam`` (and any task training on
CIFAR-10): :func:`load_images` picks the data, :func:`to_tensors` scales and normalises it.
"""

from __future__ import annotations

import os

import torch

from .cifar import load_cifar10
from .sets import ImageSet
from .sources import resolve
from .synthetic import synthetic_cifar


def load_images(
    n_train: int | None, n_test: int | None, data_dir: str | os.PathLike | None = None
) -> tuple[ImageSet, ImageSet, str]:
    """(train ImageSet, test ImageSet, description) of CIFAR-10, images uint8 (N, 3, 32, 32).

    Real python batches (``cifar-10-batches-py``) when found in ``data_dir`` (else
    ``$DRILLS_DATA_DIR``), capped at ``n_train`` / ``n_test`` images (None: all 50,000 /
    10,000); otherwise the seeded synthetic stand-in (``harness.data.synthetic_cifar``) of
    that many images, and the description starts with ``SYNTHETIC``.

    Raises:
        DataFormatError: a batch file is present but malformed (it names the file).
    """
    src = resolve("cifar10", data_dir)
    if src.kind == "files" and src.path is not None:
        tr, te = load_cifar10(src.path, "train"), load_cifar10(src.path, "test")
        if n_train is not None:
            tr = tr.take(torch.arange(min(n_train, len(tr))))
        if n_test is not None:
            te = te.take(torch.arange(min(n_test, len(te))))
        return tr, te, tr.description
    tr, te = synthetic_cifar(n_train or 50_000, seed=0), synthetic_cifar(n_test or 10_000, seed=1)
    return tr, te, f"SYNTHETIC stand-in for CIFAR-10 (no python batches found): {tr.description}"


def to_tensors(
    train: ImageSet, test: ImageSet, device: torch.device | str, dtype: torch.dtype
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((x, y), (x_test, y_test)) on ``device``: pixels scaled to [0, 1], then each channel
    normalised by the *training* images' mean and std (the test set is not re-fitted).

    x: (N, 3, 32, 32) ``dtype``; y: (N,) int64.
    """
    x = train.images.to(dtype) / 255  # (N, 3, 32, 32)
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)  # (1, 3, 1, 1)

    def norm(s: ImageSet) -> tuple[torch.Tensor, torch.Tensor]:
        return ((s.images.to(dtype) / 255 - mean) / std).to(device), s.labels.to(device)

    return norm(train), norm(test)


def load_images_sized(image_size: int, n_train: int, n_test: int, seed: int) -> tuple[ImageSet, ImageSet, str]:
    """(train, test, description) with images uint8 (N, 3, S, S), S = ``image_size``.

    At 32 px: :func:`load_images` (real CIFAR-10 batches when found, else its stand-in).
    Smaller: the synthetic stand-in at that size, seeded ``seed`` (train) and ``seed + 1``
    (test); the description then starts with ``SYNTHETIC``. Used by ``cnn.augmentation``,
    whose tiny check trains on 16 px images.
    """
    if image_size == 32:
        return load_images(n_train, n_test)
    tr = synthetic_cifar(n_train, seed=seed, image_size=image_size)
    te = synthetic_cifar(n_test, seed=seed + 1, image_size=image_size)
    return tr, te, f"SYNTHETIC stand-in for CIFAR-10: {tr.description}"
