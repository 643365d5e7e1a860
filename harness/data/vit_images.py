"""Image data of 6.10 transformers.vit_cifar100: upsampled digits (check) or CIFAR-100 (bench)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.data.cifar import load_cifar100
from harness.data.sources import resolve
from harness.data.synthetic import synthetic_cifar
from harness.data.tabular import load_digits_images, stratified_split


def load_images(config, image_size: int, device, dtype):
    """((x, y) train, (x, y) test, description); x float (N, C, S, S) normalised per channel by the
    training set's statistics, y int64 (N,).

    ``config.data``: ``"digits"`` (scikit-learn's 8x8 digits, real, bilinearly upsampled to
    ``image_size``, stratified 75/25) or ``"cifar100"`` (the python batches under
    ``$DRILLS_DATA_DIR``, else the synthetic 100-class stand-in), capped at ``config.n_train`` /
    ``config.n_test`` images (None: all).
    """
    if config.data == "digits":
        d = load_digits_images()
        x = F.interpolate(
            d.images.to(torch.float32)[:, None] / 16, size=image_size, mode="bilinear", align_corners=False
        )  # (1797, 1, S, S)
        tr, te = stratified_split(d.labels, 0.25, seed=0)
        (xtr, ytr), (xte, yte) = (x[tr], d.labels[tr]), (x[te], d.labels[te])
        desc = f"{d.description}, bilinearly upsampled to {image_size}x{image_size}"
    else:
        src = resolve("cifar100")
        if src.kind == "files" and src.path is not None:
            a, b = load_cifar100(src.path, "train"), load_cifar100(src.path, "test")
            desc = a.description
        else:
            a, b = (
                synthetic_cifar(config.n_train or 50_000, 100, seed=0),
                synthetic_cifar(config.n_test or 10_000, 100, seed=1),
            )
            desc = f"SYNTHETIC stand-in for CIFAR-100 (no cifar-100-python found): {a.description}"
        a = a.take(torch.arange(min(config.n_train or len(a), len(a))))
        b = b.take(torch.arange(min(config.n_test or len(b), len(b))))
        (xtr, ytr), (xte, yte) = (a.images.float() / 255, a.labels), (b.images.float() / 255, b.labels)
    mean, std = xtr.mean(dim=(0, 2, 3), keepdim=True), xtr.std(dim=(0, 2, 3), keepdim=True)
    norm = lambda t: ((t - mean) / std).to(device, dtype)  # noqa: E731
    return (norm(xtr), ytr.to(device)), (norm(xte), yte.to(device)), desc
