"""Two tasks from scikit-learn's digits for transfer learning: 0-4 (source) and 5-9 (target).

The target labels are shifted to 0-4 so that one 5-way head shape serves both tasks;
:func:`few_shot` draws a seeded k-shot training set from a split.
"""

from __future__ import annotations

import torch

from .tabular import load_digits_images, stratified_split

Split = tuple[torch.Tensor, torch.Tensor]  # images (N, 1, 8, 8) in [0, 1], labels (N,) int64


def digit_tasks(device: torch.device | str, dtype: torch.dtype) -> list[tuple[Split, Split]]:
    """[(source train, source test), (target train, target test)]: digits 0-4 and 5-9 (relabelled
    0-4), each split 70/30 stratified with seed 0; pixels / 16."""
    ds = load_digits_images()
    x = (ds.images.to(dtype) / 16).unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)
    out = []
    for lo in (0, 5):
        m = (ds.labels >= lo) & (ds.labels < lo + 5)
        xs, ys = x[m], ds.labels[m] - lo
        tr, te = stratified_split(ys, 0.3, seed=0)
        out.append(((xs[tr].to(device), ys[tr].to(device)), (xs[te].to(device), ys[te].to(device))))
    return out


def few_shot(train: Split, shots: int, seed: int, n_classes: int = 5) -> Split:
    """``shots`` images per class of ``train``, drawn with a generator seeded ``seed``.

    Raises:
        ValueError: a class has fewer than ``shots`` images.
    """
    g = torch.Generator().manual_seed(seed)
    y = train[1].cpu()
    picks = []
    for c in range(n_classes):
        members = torch.nonzero(y == c).flatten()
        if len(members) < shots:
            raise ValueError(f"few_shot: class {c} has {len(members)} images, fewer than shots={shots}")
        picks.append(members[torch.randperm(len(members), generator=g)[:shots]])
    idx = torch.cat(picks)
    return train[0][idx.to(train[0].device)], train[1][idx.to(train[1].device)]
