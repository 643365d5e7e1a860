"""What the pinned-loader comparison (m3.pinned_loader) feeds, consumes and checks.

* :class:`TableSet`: a data set of host table rows served a whole batch per ``__getitem__``
  (a view for a contiguous run of rows, so loading costs nothing next to the copy);
* :func:`checksum` with :func:`position_weights`: a batch verified on the device against the
  host table without copying it back (a swapped pair of samples changes the weighted sum);
* :class:`Consumer`: the "training step" a copy can hide behind;
* :class:`MoveEach`: the baseline loader, a plain ``.to(device)`` of each batch.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class TableSet(Dataset):
    """Sample i = (i, table[i % rows]); indexed by a *list* of indices, it returns a whole batch.

    Used with ``batch_size=None`` and a BatchSampler as sampler, so one ``__getitem__`` call
    builds one batch: a view of the table for a contiguous run of rows (no host copy), an
    ``index_select`` otherwise.
    """

    def __init__(self, table: torch.Tensor, samples: int):
        self.table, self.samples = table, samples

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.as_tensor(idx, dtype=torch.int64)  # (B,)
        rows = self.table.shape[0]
        start = idx[0] % rows
        if start + len(idx) <= rows and idx[-1] - idx[0] == len(idx) - 1:
            return ids, self.table[start : start + len(idx)]  # (B, F) view: no copy
        return ids, self.table.index_select(0, ids % rows)  # (B, F)


def position_weights(features: int, device) -> torch.Tensor:
    """Weights 1 + (k % 251) / 251 over a sample's values: a permutation changes the weighted sum."""
    return 1.0 + (torch.arange(features, device=device, dtype=torch.float64) % 251) / 251


def checksum(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(B, F) -> (2,) float64: plain sum and a sum weighted by global position (sample-major)."""
    xd = x.to(torch.float64)
    row_w = torch.arange(1, x.shape[0] + 1, device=x.device, dtype=torch.float64)[:, None]  # (B, 1)
    return torch.stack([xd.sum(), (xd * w[None, :] * row_w).sum()])


class Consumer:
    """The 'training step' per batch: ``iters`` matmuls of (B*F/256, 256) @ (256, 256)."""

    def __init__(self, iters: int, device, seed: int):
        g = torch.Generator().manual_seed(seed + 1)
        self.w = (torch.randn(256, 256, generator=g) / 16).to(device)
        self.iters = iters
        self.acc = torch.zeros((), device=device)

    def __call__(self, x: torch.Tensor) -> None:
        y = x.view(-1, 256)  # (B * F / 256, 256)
        for _ in range(self.iters):
            y = torch.tanh(y @ self.w)
        self.acc += y[0, 0]  # keep a dependency on the result, no host sync


class MoveEach:
    """The baseline: iterate a DataLoader and copy each batch with a plain ``.to(device)``."""

    def __init__(self, dl: DataLoader, device):
        self.dl, self.device = dl, torch.device(device)

    def __iter__(self):
        for ids, x in self.dl:
            yield ids, x.to(self.device)
