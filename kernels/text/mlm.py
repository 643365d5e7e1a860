"""BERT's masked-language-model rule and loss (Devlin et al. 2019, section 3.1 and appendix A.1).

:func:`mlm_mask` selects each non-padding token with probability 0.15 (as Hugging Face's
``DataCollatorForLanguageModeling`` draws it) and replaces a selected token by ``<mask>``
with probability 0.8, by a uniformly random ordinary token with probability 0.1, and keeps
it with probability 0.1; :func:`mlm_loss` is the cross-entropy of the original token at the
selected positions only. Used by 6.09 ``transformers.mlm``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MASK = "<mask>"
IGNORE = -100


def mlm_mask(
    ids: torch.Tensor,
    *,
    mask_id: int,
    first_ordinary: int,
    vocab_size: int,
    pad_id: int = 0,
    select_p: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of ids (B, T) int64: (inputs (B, T), labels (B, T), -100 where not selected).

    Ordinary tokens are ids in [first_ordinary, vocab_size); random replacements come from there.
    Padding (``pad_id``) is never selected. Randomness from ``generator`` (CPU).
    """
    g = generator
    shape = ids.shape
    selected = (torch.rand(shape, generator=g) < select_p).to(ids.device) & (ids != pad_id)  # (B, T)
    u = torch.rand(shape, generator=g).to(ids.device)
    random_tok = torch.randint(first_ordinary, vocab_size, shape, generator=g).to(ids.device)
    inputs = torch.where(selected & (u < 0.8), mask_id, ids)
    inputs = torch.where(selected & (u >= 0.8) & (u < 0.9), random_tok, inputs)  # u >= 0.9: kept
    labels = torch.where(selected, ids, IGNORE)
    return inputs, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the selected positions: logits (B, T, V), labels (B, T) with -100 elsewhere."""
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
