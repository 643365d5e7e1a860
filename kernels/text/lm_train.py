"""A language model's training run on random windows of a token stream, timed, then its held-out loss.

Each step draws ``batch_size`` windows of ``seq_len + 1`` tokens at random offsets
(:func:`harness.data.corpus.random_windows`) and takes one next-token step
(:func:`harness.train_text.lm_step`); the clock covers the steps only (the device is
synchronised before reading it). The held-out loss is the mean next-token cross-entropy
(nats) over up to 64 non-overlapping windows of the held-out ids.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from harness.data.corpus import random_windows, split_windows
from harness.train_text import lm_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_lm(
    fwd: Callable[[torch.Tensor], torch.Tensor], opt: torch.optim.Optimizer, train: torch.Tensor,
    held: torch.Tensor, *, steps: int, batch_size: int, seq_len: int, seed: int, device: torch.device,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> tuple[list[float], float, float]:  # fmt: skip
    """(training losses per step, held-out loss, training seconds).

    Args:
        fwd: ids (B, T) int64 -> logits (B, T, V) (the model, or its compiled wrapper).
        train, held: int64 token ids (N,), on any device (windows move to ``device``).
        seed: seeds the window offsets' generator.
        autocast: a fresh context manager per step and for the evaluation (bf16 autocast or none).
    """
    g, losses = torch.Generator().manual_seed(seed), []
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        with autocast():
            losses.append(lm_step(fwd, opt, random_windows(train, batch_size, seq_len, g).to(device)))
    _sync(device)
    seconds = time.perf_counter() - t0
    x, y = split_windows(held[: 64 * seq_len + 1], seq_len)  # (64, T) each
    with torch.no_grad(), autocast():
        val = float(F.cross_entropy(fwd(x.to(device)).flatten(0, 1).float(), y.to(device).flatten()))
    return [float(v) for v in losses], val, seconds
