"""First-token recall: a SYNTHETIC sequence task whose answer sits at position 0 (seeded).

Each sequence starts with one of ``keys`` key tokens; the label is which one. The other T-1
positions hold random filler tokens, and a share ``distractors`` of them are key tokens too,
so a model must remember the *first* key, not any key, across T-1 steps: a recurrent model
carries it in its state through every step, attention can look back at position 0 directly.
"""

from __future__ import annotations

import torch


def first_token_recall(
    n: int, T: int, *, vocab: int, keys: int, distractors: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x int64 (n, T), y int64 (n,)): x[:, 0] = 1 + y; token ids 1..keys are keys, keys+1..vocab-1
    filler (0, padding, is never used); each later position is a key (a distractor) with probability
    ``distractors``. Raises ValueError when ``vocab`` leaves no filler ids."""
    if vocab <= keys + 1:
        raise ValueError(f"first_token_recall: vocab {vocab} must exceed keys + 1 = {keys + 1} (filler ids)")
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(keys + 1, vocab, (n, T), generator=g)  # filler
    y = torch.randint(0, keys, (n,), generator=g)
    x[:, 0] = 1 + y
    dis = torch.rand(n, T, generator=g) < distractors
    dis[:, 0] = False
    return torch.where(dis, 1 + torch.randint(0, keys, (n, T), generator=g), x), y
