"""Wrong masking rules and losses, the mutants of transformers.mlm (beside :mod:`kernels.text.mlm`).

Each breaks one part of BERT's rule (selection rate, 80/10/10 split, replacement range, padding) or
of the loss, and the task's statistical and exact checks must reject every one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from kernels.text.mlm import IGNORE


def wrong_mask(
    p_select: float = 0.15,
    split: tuple[float, float] = (0.8, 0.9),
    low: int | None = None,
    high: Callable[[int], int] | None = None,
    pad_ok: bool = False,
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """A masking rule with the signature of :func:`kernels.text.mlm.mlm_mask` and one parameter
    wrong: selection probability ``p_select``, cumulative ``<mask>``/random split, random ids from
    ``low`` (default: ``first_ordinary``) to ``high(vocab_size)`` (default: ``vocab_size``), or
    padding selectable (``pad_ok``). Returns (inputs, labels), both (B, T) int64."""

    def fn(ids, *, mask_id, first_ordinary, vocab_size, pad_id=0, select_p=None, generator=None):
        g = generator
        sel = (torch.rand(ids.shape, generator=g) < p_select) & (pad_ok | (ids != pad_id))
        u = torch.rand(ids.shape, generator=g)
        hi = vocab_size if high is None else high(vocab_size)
        rnd = torch.randint(first_ordinary if low is None else low, hi, ids.shape, generator=g)
        out = torch.where(sel & (u < split[0]), mask_id, ids)
        return torch.where(sel & (u >= split[0]) & (u < split[1]), rnd, out), torch.where(sel, ids, IGNORE)

    return fn


def loss_over_all_positions(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every position of logits (B, T, V), the unselected ones included."""
    targets = torch.where(labels == IGNORE, 3, labels)  # any target will do at unselected positions
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
