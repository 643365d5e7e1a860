"""scikit-learn's digits written as MNIST-format IDX files: real data to test an IDX reader on.

Used by ``nn_basics.mnist_no_torchvision``: its check writes them, reads them back through
the task's loader (exactly) and trains on what it read.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .idx import write_mnist
from .tabular import load_digits_images, stratified_split

Split = tuple[torch.Tensor, torch.Tensor]  # images float (N, H, W) in [0, 1], labels int64 (N,)


def write_digits_as_mnist(root: str | os.PathLike, seed: int) -> tuple[Split, Split]:
    """Write the 1,797 digits as MNIST's four files under ``root``; return (train, test) as written.

    Pixels 0..16 become 0..255 (``p * 255 // 16``, uint8, as MNIST's); a stratified 75/25 split
    seeded ``seed``; the train files are gzip-compressed, the test files raw (``t10k-*``), so a
    reader must handle both. The returned images are those bytes / 255.
    """
    images, labels = load_digits_images()  # uint8 (1797, 8, 8) in 0..16
    images = (images.int() * 255 // 16).to(torch.uint8)  # 0..16 -> 0..255, as MNIST pixels
    splits = stratified_split(labels, 0.25, seed=seed)
    for split, rows, gz in zip(("train", "test"), splits, (True, False)):
        write_mnist(Path(root), split, images[rows], labels[rows], compress=gz)
    train, test = ((images[rows].float() / 255.0, labels[rows]) for rows in splits)
    return train, test
