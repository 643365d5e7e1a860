"""Fashion-MNIST images for training tasks: the four IDX files when found, else sklearn digits.

Used by ``cnn.fashion_mnist``: :func:`load_fashion_or_digits` picks the data and scales it,
and says which it picked (``description``, ``model_preset``).
"""

from __future__ import annotations

import dataclasses
import os

import torch

from .idx import load_mnist
from .sources import resolve
from .tabular import load_digits_images, stratified_split


@dataclasses.dataclass
class FashionData:
    """Train and test tensors: images float (N, 1, H, W) in [0, 1], labels int64 (N,).

    Attributes:
        train, test: (images, labels).
        description: where the images came from (the run's notes).
        model_preset: the ``models.convnets`` SmallCNN preset for them: ``fashion`` (28x28)
            or ``digits`` (8x8).
    """

    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    description: str
    model_preset: str


def load_fashion_or_digits(
    data_dir: str | os.PathLike | None = None, device: torch.device | str = "cpu"
) -> FashionData:
    """Fashion-MNIST from its IDX files when ``data_dir`` (else ``$DRILLS_DATA_DIR``) has
    them, pixels / 255; else the embedded sklearn digits (1,797 real 8x8, not clothing),
    25% held out by a stratified split with seed 0, pixels / 16 (digits hold 0..16).

    Raises:
        DataNotFoundError: an explicit ``data_dir`` lacks the files.
    """
    src = resolve("fashion_mnist", data_dir)
    if src.kind == "files" and src.path is not None:
        tr, te = load_mnist(src.path, "train", kind="fashion"), load_mnist(src.path, "test", kind="fashion")
        scale, preset, desc = 255.0, "fashion", tr.description
        (xtr, ytr), (xte, yte) = tr, te
    else:
        ds = load_digits_images()
        itr, ite = stratified_split(ds.labels, 0.25, seed=0)
        scale, preset = 16.0, "digits"
        desc = f"{ds.description}; standing in for Fashion-MNIST ({src})"
        (xtr, ytr), (xte, yte) = ds.take(itr), ds.take(ite)

    def prep(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / scale).unsqueeze(1).to(device)  # (N, H, W) -> (N, 1, H, W)

    return FashionData((prep(xtr), ytr.to(device)), (prep(xte), yte.to(device)), desc, preset)
