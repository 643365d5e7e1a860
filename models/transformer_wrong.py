"""Wrong pieces of :mod:`models.transformer`: the mutants of transformers.decoder_generation.

An attention function with an off-by-one causal mask (passed as ``GPT(..., sdpa=)``) and two
KV caches (passed as ``GPT.generate(..., cache_cls=)``) that lose or misplace keys; the task's
causality and cache = no-cache checks must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.transformer import KVCache


def off_by_one_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    """``F.scaled_dot_product_attention`` whose causal mask lets position t see t + 1."""
    if is_causal:
        attn_mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril(diagonal=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


class DropsLastKey(KVCache):
    """Returns every cached key but the newest."""

    def update(self, layer, k, v, offset):
        ks, vs = super().update(layer, k, v, offset)
        return (ks[:, :, :-1], vs[:, :, :-1]) if ks.shape[2] > 1 else (ks, vs)


class OverwritesAtZero(KVCache):
    """Writes every new key at position 0 instead of at the current offset."""

    def update(self, layer, k, v, offset):
        return super().update(layer, k, v, 0)
