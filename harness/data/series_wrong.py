"""Leaky versions of rnn.time_series' data preparation (its mutants), each beside the right one in
``harness.data.series``: the task's leakage checks must reject every one.

Each takes what the task's own method takes: ``values`` float64 (N,) (normalised, for the window
makers), ``split`` (the first test index) and the task's config (``input_len``).
"""

from __future__ import annotations

import torch

from harness.data.series import Scaler, Windows, make_windows


def full_series_scaler(values: torch.Tensor, split: int) -> Scaler:
    """A scaler fitted on the whole series: test-period statistics leak into training."""
    return Scaler.fit(values)


def target_in_inputs(values: torch.Tensor, split: int, cfg) -> tuple[Windows, Windows]:
    """Off by one: each window's inputs end at (and include) its own target."""
    shift = lambda w: Windows(values[w.input_index + 1], w.targets, w.input_index + 1, w.target_index)
    L = cfg.input_len
    return shift(make_windows(values, L, 1, end=split)), shift(make_windows(values, L, 1, first_target=split))


def random_split(values: torch.Tensor, split: int, cfg) -> tuple[Windows, Windows]:
    """Windows over the whole series, split at random 80/20 instead of by time."""
    w = make_windows(values, cfg.input_len, 1)
    perm = torch.randperm(len(w), generator=torch.Generator().manual_seed(0))
    k = int(0.8 * len(w))
    pick = lambda i: Windows(w.inputs[i], w.targets[i], w.input_index[i], w.target_index[i])
    return pick(perm[:k]), pick(perm[k:])
