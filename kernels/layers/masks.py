"""Attention inputs and masks of every kind, for checks (6.01 sdpa, 6.07 mha_manual).

:func:`make_mask` builds, in F.sdpa's polarity (True = attend), no mask, ``is_causal``, an
explicit causal boolean, key padding as booleans and as additive floats (0 / -inf), a random
additive bias broadcast over heads, and a boolean mask with one fully masked query row.
:func:`mha_inputs` builds an ``nn.MultiheadAttention`` call of a :class:`MhaConfig` (its
boolean masks mark what is *blocked*).
:func:`loglog_slope` fits how a measured quantity grows with a size (1: linear, 2: quadratic).
"""

from __future__ import annotations

import dataclasses
import math

import torch

MASKS = ("none", "is_causal", "causal_bool", "padding_bool", "padding_float", "float_bias", "dead_row")


def make_mask(
    kind: str, B: int, L: int, S: int, g: torch.Generator, dtype: torch.dtype
) -> tuple[torch.Tensor | None, bool]:
    """(attn_mask or None, is_causal) for ``config.mask``, in F.sdpa's polarity (True = attend)."""
    if kind == "none":
        return None, False
    if kind == "is_causal":
        return None, True
    if kind == "causal_bool":
        return torch.ones(L, S, dtype=torch.bool).tril(), False  # (L, S)
    if kind in ("padding_bool", "padding_float"):
        lengths = torch.randint(1, S + 1, (B,), generator=g)
        lengths[0] = S  # one unpadded row
        keep = (torch.arange(S)[None, :] < lengths[:, None]).view(B, 1, 1, S)  # broadcast over H and L
        if kind == "padding_bool":
            return keep, False
        return torch.zeros(B, 1, 1, S, dtype=dtype).masked_fill(~keep, -math.inf), False
    if kind == "float_bias":
        return torch.randn(B, 1, L, S, generator=g, dtype=dtype), False  # broadcast over H
    if kind == "dead_row":
        m = torch.rand(L, S, generator=g) > 0.4
        m[L // 2] = False  # that query sees no key: output 0
        m[0, 0] = True
        return m, False
    raise ValueError(f"unknown mask kind {kind!r}; use one of {MASKS}")


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log(y) against log(x): 1 for linear growth, 2 for quadratic."""
    lx = torch.tensor([math.log(x) for x in xs], dtype=torch.float64)
    ly = torch.tensor([math.log(max(y, 1e-12)) for y in ys], dtype=torch.float64)
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())


@dataclasses.dataclass(frozen=True)
class MhaConfig:
    """One nn.MultiheadAttention call."""

    batch: int
    """B: sequences (0: unbatched (L, E) input)"""
    tgt_len: int
    """L: query positions"""
    src_len: int
    """S: key/value positions (== L with ``cross=False``)"""
    embed_dim: int
    """E: model width"""
    heads: int
    """H: heads (E divisible by H)"""
    batch_first: bool = False
    """(B, L, E) instead of (L, B, E)"""
    cross: bool = False
    """key/value from a second sequence instead of the query's"""
    key_padding: str = "none"
    """"none", "bool" (True = padding) or "float" (-inf at padding)"""
    attn_mask: str = "none"
    """"none", "causal" (2-D bool), "bias" (2-D float) or "per_head" (3-D (B*H, L, S) bool)"""
    need_weights: bool = True
    """return the attention weights too"""
    average: bool = True
    """average_attn_weights: mean over heads (True) or per head (False)"""

    def label(self) -> str:
        parts = [f"B={self.batch},L={self.tgt_len},S={self.src_len},E={self.embed_dim},H={self.heads}"]
        parts += [n for n, on in (("batch_first", self.batch_first), ("cross", self.cross)) if on]
        parts += [f"kpm={self.key_padding}"] if self.key_padding != "none" else []
        parts += [f"mask={self.attn_mask}"] if self.attn_mask != "none" else []
        parts += ["no_weights" if not self.need_weights else ("avg" if self.average else "per_head")]
        return ",".join(parts)


def mha_inputs(config: MhaConfig, g: torch.Generator, dtype: torch.dtype):
    """(query, key, value, key_padding_mask or None, attn_mask or None) for one
    ``nn.MultiheadAttention`` call, in that module's polarity (boolean True = blocked)."""
    B, L, E, H = config.batch, config.tgt_len, config.embed_dim, config.heads
    S = config.src_len if config.cross else L
    lead = (B,) if B else ()

    def seq(n):
        x = torch.randn(*lead, n, E, generator=g, dtype=dtype)  # (B, n, E)
        return x.transpose(0, 1) if B and not config.batch_first else x  # (n, B, E) time-major

    q = seq(L)
    k = seq(S) if config.cross else q
    v = seq(S) if config.cross else q
    kpm = None
    if config.key_padding != "none":
        lengths = torch.randint(max(1, S // 2), S + 1, (max(B, 1),), generator=g)
        pad = torch.arange(S)[None, :] >= lengths[:, None]  # (B, S), True = padding
        pad = pad[0] if not B else pad
        kpm = pad if config.key_padding == "bool" else torch.zeros(pad.shape, dtype=dtype).masked_fill(pad, -math.inf)
    mask = None
    if config.attn_mask == "causal":
        mask = torch.ones(L, S, dtype=torch.bool).triu(1)  # True = blocked: keys after the query
    elif config.attn_mask == "bias":
        mask = torch.randn(L, S, generator=g, dtype=dtype)
    elif config.attn_mask == "per_head":
        mask = torch.rand(max(B, 1) * H, L, S, generator=g) < 0.3
        mask[..., 0] = False  # every query keeps key 0: no fully masked row (torch gives NaN there)
    return q, k, v, kpm, mask
