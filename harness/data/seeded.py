"""Seeded input pipelines: per-worker NumPy seeding and a sampler that resumes mid-epoch.

Two things break the reproducibility of a DataLoader with ``num_workers > 0`` (PyTorch docs,
"Reproducibility" and "torch.utils.data: Randomness in multi-process data loading"):

* each worker is a copy of the parent process. Since PyTorch 1.9 the worker loop seeds
  NumPy's *global* generator and ``random`` per worker itself, but a ``np.random.Generator``
  object made in the parent (NumPy's recommended API) is copied into every worker unchanged,
  so all workers replay the same "random" augmentations. :func:`seed_worker` (a
  ``worker_init_fn``) re-seeds the worker's copy of the data set's generator from the
  per-worker seed torch derives from the loader's generator;
* a resumed run must see the batches the interrupted run would have seen next.
  :class:`ResumableSampler` draws one permutation per epoch from ``(seed, epoch)`` and can
  start at any position, so ``state_dict()`` / ``load_state_dict()`` restore the stream.

:class:`AugmentedDigits` is the data set both tasks and tests use: sklearn's digits
(1,797 8x8 images, real data) with a random shift and pixel noise drawn from a NumPy
Generator in ``__getitem__``: exactly where the per-worker seeding matters.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed the data set's generator, NumPy and ``random`` from this worker's torch seed."""
    from torch.utils.data import get_worker_info

    s = torch.initial_seed() % 2**32  # torch sets base_seed + worker_id in each worker
    np.random.seed(s)
    random.seed(s)
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng(s)  # this worker's copy only


class AugmentedDigits(Dataset):
    """Digits (1, 8, 8) float32 in [0, 1] with a random 1-pixel shift and noise from ``self.rng``.

    Items are ``(image (1, 8, 8) float32, label int64, index int, draw float)``: the index says
    which sample it is whatever the augmentation did, and ``draw`` (the sum of the noise drawn)
    identifies the random numbers used, so duplicated worker streams show as equal draws.
    """

    def __init__(self, n: int | None = None, seed: int = 0):
        from harness.data.tabular import load_digits_images

        self.rng = np.random.default_rng(seed)  # made in the parent: copied into each worker
        images, labels = load_digits_images()
        self.x = (images.float() / 16.0)[:n, None]  # (N, 1, 8, 8)
        self.y = labels[:n]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int, float]:
        dx, dy = self.rng.integers(-1, 2, size=2)
        img = torch.roll(self.x[i], shifts=(int(dy), int(dx)), dims=(1, 2))
        noise = torch.from_numpy(self.rng.normal(0.0, 0.05, size=img.shape).astype(np.float32))
        return img + noise, self.y[i], i, float(noise.sum())


class ResumableSampler(Sampler[int]):
    """Indices of a seeded permutation per epoch, starting at ``start`` (for a mid-epoch resume).

    Args:
        n: data set size.
        seed: base seed; epoch e uses the permutation of ``torch.Generator().manual_seed(seed + e)``.

    The state is ``{"epoch", "position"}``: ``position`` counts indices already handed out
    (the loader must report what it consumed: ``advance(k)`` after each batch of k samples).
    """

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch, self.position = n, seed, 0, 0

    def __iter__(self) -> Iterator[int]:
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        yield from perm[self.position :].tolist()

    def __len__(self) -> int:
        return self.n - self.position

    def advance(self, k: int) -> None:
        self.position += k

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position, self.seed = int(state["epoch"]), int(state["position"]), int(state["seed"])
