"""Plausible wrong image input pipelines (loaders, augmentations), each beside the right one it mirrors.

The mutants of cnn.cifar10_cnn (wrong versions of :func:`harness.data.cifar_images.load_images`)
and cnn.augmentation (wrong versions of :mod:`kernels.vision.augment`): their checks must
reject every one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import dataclasses

from harness.data.cifar_images import load_images

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
