"""Attention maps of a trained model, for pictures: the weights an F.sdpa call computes.

``F.scaled_dot_product_attention`` never returns its weights (the fused kernels never
store them). :func:`record_attention` swaps the ``sdpa`` of every attention module of a
``models.transformer`` model for an explicit softmax(Q K^T / sqrt(D) + mask) V that keeps
the weights, runs the caller's forward, and puts the original kernel back.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn


def _explicit_sdpa(store: list[torch.Tensor]):
    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **_):
        L, S = q.shape[-2], k.shape[-2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, L, S)
        if is_causal:
            attn_mask = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, -math.inf) if attn_mask.dtype == torch.bool else scores + attn_mask
        w = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        store.append(w.detach().cpu())
        return w @ v

    return sdpa


@contextlib.contextmanager
def record_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every attention call of ``model`` appends its weights (B, H, L, S)
    (float, on the CPU) to the yielded list, in call order (layer by layer; in an
    encoder-decoder: encoder layers, then per decoder layer self- then cross-attention).

    Raises:
        ValueError: the model has no module with an ``sdpa`` attribute to replace.
    """
    mods = [m for m in model.modules() if hasattr(m, "sdpa") and callable(getattr(m, "sdpa", None))]
    if not mods:
        raise ValueError(f"record_attention: {type(model).__name__} has no attention module with an `sdpa` kernel")
    store: list[torch.Tensor] = []
    saved = [m.sdpa for m in mods]
    try:
        for m in mods:
            m.sdpa = _explicit_sdpa(store)
        yield store
    finally:
        for m, s in zip(mods, saved):
            m.sdpa = s


@torch.no_grad()
def last_layer_map(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The weights (L, S) of the last attention call of ``model(x)`` for the first sample of
    ``x``, averaged over heads (float, CPU): the last layer's map, for a heatmap.

    Raises ValueError as :func:`record_attention` does (no attention module to record).
    """
    with record_attention(model) as maps:
        model(x)
    return maps[-1][0].mean(0)  # (B, H, L, S) -> (L, S)
