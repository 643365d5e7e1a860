"""Plausible wrong image input pipelines (loaders, augmentations), each beside the right one it mirrors.

The mutants of cnn.cifar10_cnn (wrong versions of :func:`harness.data.cifar_images.load_images`),
cnn.augmentation (of :mod:`kernels.vision.augment`) and nn_basics.mnist_no_torchvision (of its
IDX reader, pixels / 255): their checks must reject every one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import dataclasses
import types

import torch
import torch.nn.functional as F

from harness.data.cifar_images import load_images
from harness.data.idx import load_mnist
from kernels.vision import augment

# -- CIFAR-10 loaders (cnn.cifar10_cnn): (n_train, n_test, data_dir) -> (train, test, description)


def ignores_batches(n_train, n_test, data_dir=None):
    """WRONG: never looks in ``data_dir``: always the stand-in (or ``$DRILLS_DATA_DIR``)."""
    return load_images(n_train, n_test, None)


def hwc_order(n_train, n_test, data_dir=None):
    """WRONG: rows read as (32, 32, 3) instead of (3, 32, 32): the classic CIFAR reshape bug."""
    tr, te, d = load_images(n_train, n_test, data_dir)

    def fix(s):
        return dataclasses.replace(s, images=s.images.reshape(-1, 32, 32, 3).permute(0, 3, 1, 2))

    return fix(tr), fix(te), d


def hides_truncation(n_train, n_test, data_dir=None):
    """WRONG: a malformed batch file falls back to the stand-in silently."""
    try:
        return load_images(n_train, n_test, data_dir)
    except ValueError:
        return load_images(n_train, n_test, None)


# -- augmentations (cnn.augmentation): kernels.vision.augment with one function replaced ----


def augment_ops(**replace) -> types.SimpleNamespace:
    """The functions of :mod:`kernels.vision.augment`, with those named in ``replace`` swapped."""
    return types.SimpleNamespace(**{**vars(augment), **replace})


def flips_labels(x, y, g, padding=4, flip_p=0.5):
    """WRONG ``augment_batch``: the label changes with the flip (it "mirrors" the class too)."""
    out, flipped = augment.random_flip(x, g, flip_p)
    return out, torch.where(flipped.to(y.device), 9 - y, y)


def global_rng(x, y, g, padding=4, flip_p=0.5):
    """WRONG ``augment_batch``: ignores the generator it is given and draws from a fresh seed."""
    return augment.augment_batch(x, y, torch.Generator().manual_seed(torch.seed()), padding=padding, flip_p=flip_p)


def shifted_crop(images, offsets, padding, fill=0.0):
    """WRONG ``crop_with_padding``: the window one pixel off."""
    return torch.roll(augment.crop_with_padding(images, offsets, padding, fill), 1, dims=-1)


def crop_without_padding(images, offsets, padding, fill=0.0):
    """WRONG ``crop_with_padding``: a zoom (centre cut, resized back), not a padded crop."""
    h, w = images.shape[-2:]
    return F.interpolate(images[..., padding : h - padding, padding : w - padding], size=(h, w))


# -- MNIST IDX readers (nn_basics.mnist_no_torchvision): (self, root, split) -> (images, labels)


def idx_drops_last(self, root, split):
    """WRONG reader: an off-by-one that loses the last image and label of the split."""
    images, labels = load_mnist(root, split)  # uint8 (N, H, W), int64 (N,)
    return images[:-1].float() / 255.0, labels[:-1]


def idx_transposed(self, root, split):
    """WRONG reader: row-major pixels read column-major (each image transposed)."""
    images, labels = load_mnist(root, split)
    return images.transpose(1, 2).float().contiguous() / 255.0, labels
