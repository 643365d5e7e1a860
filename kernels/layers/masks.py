"""Attention masks of every kind ``F.scaled_dot_product_attention`` accepts, for checks (6.01 sdpa).

:func:`make_mask` builds, in F.sdpa's polarity (True = attend), no mask, ``is_causal``, an
explicit causal boolean, key padding as booleans and as additive floats (0 / -inf), a random
additive bias broadcast over heads, and a boolean mask with one fully masked query row.
:func:`loglog_slope` fits how a measured quantity grows with a size (1: linear, 2: quadratic).
"""

from __future__ import annotations

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
