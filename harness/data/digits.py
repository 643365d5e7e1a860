"""scikit-learn's 8x8 digits as flat feature vectors: the one loader the MLP tasks share.

:func:`load_digits_images <harness.data.tabular.load_digits_images>` gives the images as
uint8 (1797, 8, 8) with values 0..16; the small-MLP tasks (grad accumulation, gradient flow,
momentum, weight decay, SGD vs Adam) all want them flattened to 64 features scaled to [0, 1].
"""

from __future__ import annotations

import functools

import torch

from .tabular import load_digits_images, stratified_split


@functools.lru_cache(maxsize=4)
def _features(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_digits_images()
    x = images.reshape(-1, 64).to(dtype) / 16.0  # (1797, 8, 8) -> (1797, 64), 0..16 -> [0, 1]
    return x, labels


def digits_features(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as (features, labels).

    Args:
        dtype: a floating dtype for the features (float32 or float64 in the tasks).
    Returns (x, y): x ``dtype`` (1797, 64) in [0, 1] (pixel / 16), y int64 (1797,) in 0..9.
    The tensors are cached and shared between callers: index or copy them, never modify in place.
    Raises ValueError for a non-floating dtype.
    """
    if not dtype.is_floating_point:
        raise ValueError(f"digits_features: dtype must be floating (float32/float64), got {dtype}")
    return _features(dtype)


def digits_split(
    test_fraction: float = 0.2, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded stratified train/test split of :func:`digits_features`.

    Args:
        test_fraction: share of each class held out, in (0, 1).
        seed: seeds :func:`~harness.data.tabular.stratified_split` (same split on every machine).
        dtype: floating dtype of the features.
    Returns (x_train, y_train, x_test, y_test): features ``dtype`` (N, 64) in [0, 1], labels int64 (N,).
    """
    x, y = digits_features(dtype)
    tr, te = stratified_split(y, test_fraction, seed=seed)
    return x[tr], y[tr], x[te], y[te]
