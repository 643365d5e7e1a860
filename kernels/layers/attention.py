"""Attention from scratch: scaled dot-product attention (naive and blocked) and multi-head attention.

Scaled dot-product attention (Vaswani et al., "Attention Is All You Need", 2017, eq. 1;
PyTorch docs of ``F.scaled_dot_product_attention``)::

    Attention(Q, K, V) = softmax(Q K^T * scale + M) V,        scale = 1 / sqrt(D) by default

Masks follow ``F.scaled_dot_product_attention``: a *boolean* ``attn_mask`` says which
query/key pairs may attend (True = take part); a *float* one is added to the scores
(``-inf`` removes a pair). ``is_causal=True`` allows key j for query i when j <= i (the
top-left aligned lower triangle, ``ones(L, S).tril()``, as torch does when L != S). A query
row whose every key is masked gets an all-zero output (torch 2.13 does the same on CPU).
Passing both ``attn_mask`` and ``is_causal`` raises ValueError: torch's documentation
forbids it and its math backend raises, although its CPU flash kernel silently combines them.

:func:`sdpa_blocked` is the memory-efficient form of FlashAttention (Dao et al.,
"FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness", 2022,
Algorithm 1) in plain PyTorch: keys and values are visited in blocks of ``block_size``;
each query keeps a running maximum ``m``, a running softmax denominator ``l`` and an
unnormalised output ``acc``, rescaled by ``exp(m_old - m_new)`` whenever the maximum grows
(the "online softmax" of Milakov & Gimelshein, 2018). Only an (L, block) tile of scores is
alive at a time, so its memory grows as O(L * (block + D)) instead of the O(L * S) score
matrix of :func:`sdpa_naive`; the arithmetic is the same.

:func:`multi_head_attention` / :class:`MultiheadAttention` reproduce ``nn.MultiheadAttention``
(same parameter names, masks and return values) with the heads split by hand.

Shape legend: B batch, H heads, L query length, S key/value length, D head dim (E = H*D
model width), Dv value head dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, enable_gqa: bool = False) -> None:
    if q.dim() < 2 or k.dim() != q.dim() or v.dim() != q.dim():
        raise ValueError(
            f"sdpa: query, key and value need the same rank >= 2 ((..., L, D)), got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"sdpa: query and key must share the last dim D, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"sdpa: key and value must have the same length S, got {k.shape[-2]} and {v.shape[-2]}")
    if enable_gqa:
        if q.dim() < 3:
            raise ValueError(f"sdpa: enable_gqa=True needs (..., H, L, D) inputs, got query {tuple(q.shape)}")
        hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
        if hk != hv or hk == 0 or hq % hk:
            raise ValueError(
                f"sdpa: enable_gqa=True needs key and value with the same number of heads, dividing the "
                f"query's: got {hq} query, {hk} key and {hv} value heads"
            )
    lead = 3 if enable_gqa else 2  # with GQA the head dims differ by design; the rest must broadcast
    try:
        torch.broadcast_shapes(q.shape[:-lead], k.shape[:-lead], v.shape[:-lead])
    except RuntimeError:
        raise ValueError(
            f"sdpa: the batch dims of query {tuple(q.shape[:-2])}, key {tuple(k.shape[:-2])} and value "
            f"{tuple(v.shape[:-2])} do not broadcast (fewer key/value heads need enable_gqa=True)"
        ) from None


def _repeat_kv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, enable_gqa: bool):
    """Grouped-query attention (Ainslie et al., "GQA", 2023): each of the Hk key/value heads
    serves Hq/Hk consecutive query heads, as torch's ``enable_gqa`` (repeat_interleave on dim -3)."""
    if not enable_gqa or k.shape[-3] == q.shape[-3]:
        return k, v
    r = q.shape[-3] // k.shape[-3]
    return k.repeat_interleave(r, dim=-3), v.repeat_interleave(r, dim=-3)  # (..., Hk*r = Hq, S, D)


def _check_mask(attn_mask: torch.Tensor, L: int, S: int) -> None:
    tail = tuple(attn_mask.shape[-2:]) if attn_mask.dim() >= 2 else (1, *attn_mask.shape)
    if attn_mask.dim() == 0 or tail[0] not in (1, L) or tail[1] not in (1, S):
        raise ValueError(f"sdpa: attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to (..., {L}, {S})")


def _additive_mask(
    attn_mask: torch.Tensor | None, is_causal: bool, L: int, S: int, like: torch.Tensor
) -> torch.Tensor | None:
    """The mask as something to add to the scores (0 or -inf for booleans), or None."""
    if attn_mask is not None and is_causal:
        raise ValueError(
            "sdpa: pass either attn_mask or is_causal=True, not both (fold the causal triangle into attn_mask instead)"
        )
    if is_causal:
        attn_mask = torch.ones(L, S, dtype=torch.bool, device=like.device).tril()  # (L, S)
    if attn_mask is None:
        return None
    _check_mask(attn_mask, L, S)
    if attn_mask.dtype == torch.bool:
        return torch.zeros(attn_mask.shape, dtype=like.dtype, device=like.device).masked_fill(~attn_mask, -math.inf)
    return attn_mask.to(like.dtype)


def sdpa_naive(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    generator: torch.Generator | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """softmax(Q K^T * scale + mask) V with the whole (..., L, S) score matrix in memory.

    Args:
        query (..., L, D), key (..., S, D), value (..., S, Dv): same leading dims (or broadcastable).
        attn_mask: bool (True = attend) or float (added), broadcastable to (..., L, S).
        dropout_p: probability of zeroing an attention weight (the rest scaled by 1/(1-p)),
            drawn from ``generator``; 0 for a deterministic result.
        is_causal: key j visible to query i only when j <= i.
        scale: defaults to 1/sqrt(D).
        enable_gqa: key/value (..., Hk, S, D) with Hk dividing the query's Hq heads; each
            key/value head serves Hq/Hk consecutive query heads (torch's ``enable_gqa``).
    Returns (..., L, Dv) in the query's dtype.
    Raises ValueError on mismatched shapes (batch dims that do not broadcast, head counts
    that do not divide), both masks at once, or dropout_p outside [0, 1).
    """
    _check_qkv(query, key, value, enable_gqa)
    key, value = _repeat_kv(query, key, value, enable_gqa)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"sdpa_naive: dropout_p must be in [0, 1), got {dropout_p}")
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale  # (..., L, S)
    bias = _additive_mask(attn_mask, is_causal, L, S, scores)
    if bias is not None:
        scores = scores + bias
    # a row with every key masked is all -inf: softmax would give NaN, torch gives 0
    dead = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., L, 1)
    weights = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)  # (..., L, S)
    if dropout_p > 0.0:
        keep = torch.rand(weights.shape, generator=generator, device="cpu").to(weights.device) >= dropout_p
        weights = weights * keep / (1.0 - dropout_p)
    return weights @ value  # (..., L, Dv)


def sdpa_blocked(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    block_size: int = 64,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """:func:`sdpa_naive` (dropout off) computed over key blocks with an online softmax.

    Same arguments and result as :func:`sdpa_naive`; ``block_size`` keys per step. Peak
    extra memory is O(L * (block_size + Dv)) per (batch, head) instead of O(L * S).
    Raises ValueError as :func:`sdpa_naive` does, or for block_size < 1.
    """
    _check_qkv(query, key, value, enable_gqa)
    key, value = _repeat_kv(query, key, value, enable_gqa)
    if block_size < 1:
        raise ValueError(f"sdpa_blocked: block_size must be >= 1, got {block_size}")
    L, S, D = query.shape[-2], key.shape[-2], query.shape[-1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    if attn_mask is not None:
        if is_causal:
            _additive_mask(attn_mask, is_causal, L, S, query)  # raises the shared error
        _check_mask(attn_mask, L, S)
    lead = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    if attn_mask is not None:
        lead = torch.broadcast_shapes(lead, attn_mask.shape[:-2])
    if S == 0:  # no keys: every row is fully masked, output 0 (Q (K^T V) over an empty S, still in the graph)
        return query @ (key.transpose(-2, -1) @ value)  # (..., L, D) @ (..., D, Dv) -> (..., L, Dv) of zeros
    q = query * scale  # (..., L, D): scale once, not per block
    m = torch.full((*lead, L, 1), -math.inf, dtype=query.dtype, device=query.device)  # running max
    l = torch.zeros((*lead, L, 1), dtype=query.dtype, device=query.device)  # running denominator
    acc = torch.zeros((*lead, L, value.shape[-1]), dtype=query.dtype, device=query.device)  # (..., L, Dv)
    rows = torch.arange(L, device=query.device)[:, None]  # (L, 1) query index for the causal test
    for j0 in range(0, S, block_size):
        j1 = min(j0 + block_size, S)
        if is_causal and j0 > L - 1:
            break  # every later key lies above the diagonal for every query
        s = q @ key[..., j0:j1, :].transpose(-2, -1)  # (..., L, b)
        if is_causal:
            s = s.masked_fill(torch.arange(j0, j1, device=query.device)[None, :] > rows, -math.inf)
        elif attn_mask is not None:
            blk = attn_mask[..., j0:j1] if attn_mask.shape[-1] == S else attn_mask  # (..., L|1, b)
            s = s.masked_fill(~blk, -math.inf) if blk.dtype == torch.bool else s + blk.to(s.dtype)
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))  # (..., L, 1)
        # rows that have seen only masked keys keep m = -inf; shift by 0 there to avoid inf - inf
        m_safe = torch.where(torch.isneginf(m_new), 0.0, m_new)
        p = torch.exp(s - m_safe)  # (..., L, b), exactly 0 at masked keys
        alpha = torch.exp(m - m_safe)  # (..., L, 1) rescales what was summed under the old max
        l = l * alpha + p.sum(dim=-1, keepdim=True)
        acc = acc * alpha + p @ value[..., j0:j1, :]
        m = m_new
    # fully masked rows have l = 0 and acc = 0: output 0, as torch does
    return acc / torch.where(l == 0, 1.0, l)


# -- multi-head attention -------------------------------------------------------------------------


def _merge_masks(
    key_padding_mask: torch.Tensor | None,
    attn_mask: torch.Tensor | None,
    B: int,
    H: int,
    L: int,
    S: int,
    dtype: torch.dtype,
) -> torch.Tensor | None:
    """nn.MultiheadAttention's masks (True / -inf = *blocked*) as one additive (B, H|1, L, S) mask."""
    out = None
    if attn_mask is not None:
        if attn_mask.dim() == 2:
            if attn_mask.shape != (L, S):
                raise ValueError(f"attn_mask (2-D) must be ({L}, {S}), got {tuple(attn_mask.shape)}")
            a = attn_mask.view(1, 1, L, S)
        elif attn_mask.dim() == 3:
            if attn_mask.shape != (B * H, L, S):
                raise ValueError(
                    f"attn_mask (3-D) must be (batch*heads={B * H}, {L}, {S}), got {tuple(attn_mask.shape)}"
                )
            a = attn_mask.view(B, H, L, S)
        else:
            raise ValueError(f"attn_mask must be 2-D or 3-D, got {attn_mask.dim()}-D")
        out = (
            torch.zeros(a.shape, dtype=dtype, device=a.device).masked_fill(a, -math.inf)
            if a.dtype == torch.bool
            else a.to(dtype)
        )
    if key_padding_mask is not None:
        if key_padding_mask.shape != (B, S):
            raise ValueError(
                f"key_padding_mask must be (batch={B}, source length={S}), got {tuple(key_padding_mask.shape)}"
            )
        kp = key_padding_mask.view(B, 1, 1, S)
        kp = (
            torch.zeros(kp.shape, dtype=dtype, device=kp.device).masked_fill(kp, -math.inf)
            if kp.dtype == torch.bool
            else kp.to(dtype)
        )
        out = kp if out is None else out + kp
    return out


def multi_head_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    num_heads: int,
    in_proj_weight: torch.Tensor | None,
    in_proj_bias: torch.Tensor | None,
    out_proj_weight: torch.Tensor,
    out_proj_bias: torch.Tensor | None,
    *,
    key_padding_mask: torch.Tensor | None = None,
    need_weights: bool = True,
    attn_mask: torch.Tensor | None = None,
    average_attn_weights: bool = True,
    batch_first: bool = False,
    q_proj_weight: torch.Tensor | None = None,
    k_proj_weight: torch.Tensor | None = None,
    v_proj_weight: torch.Tensor | None = None,
    bias_k: torch.Tensor | None = None,
    bias_v: torch.Tensor | None = None,
    add_zero_attn: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-head attention as ``nn.MultiheadAttention.forward`` computes it (dropout off).

    Args:
        query (L, B, E), key (S, B, Ek) and value (S, B, Ev) ((B, L, E) with ``batch_first``;
            unbatched (L, E) / (S, Ek) also accepted). Ek = Ev = E unless separate weights.
        in_proj_weight (3E, E): W_q, W_k, W_v stacked by rows; in_proj_bias (3E,) or None.
            Pass ``in_proj_weight=None`` and ``q_proj_weight`` (E, E), ``k_proj_weight``
            (E, Ek), ``v_proj_weight`` (E, Ev) for key/value widths other than E (torch's
            ``kdim``/``vdim``); in_proj_bias still stacks the three biases.
        out_proj_weight (E, E), out_proj_bias (E,) or None.
        key_padding_mask: (B, S); True (or -inf) marks padding keys to ignore.
        attn_mask: (L, S) or (B*H, L, S); True (or -inf) blocks a pair; float values add.
            Note the polarity: True = *blocked*, the opposite of ``F.scaled_dot_product_attention``.
        need_weights: also return the attention weights.
        average_attn_weights: weights (B, L, S') averaged over heads, else (B, H, L, S').
        bias_k, bias_v: (1, 1, E) each or None (torch's ``add_bias_kv``): one learned key and
            value appended after the projection, so S' = S + 1 (masks padded with "attend").
        add_zero_attn: append one all-zero key and value per head after that (S' += 1), so no
            query row is ever fully masked.
    Returns (output shaped like query, weights or None).
    Raises ValueError for E not divisible by num_heads or mismatched shapes/masks.
    """
    unbatched = query.dim() == 2
    if unbatched:
        query, key, value = (t.unsqueeze(1) for t in (query, key, value))  # (L, 1, E)
        key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
    elif batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))  # (L, B, E)
    L, B, E = query.shape
    if E % num_heads:
        raise ValueError(f"embed_dim {E} must be divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2] or key.shape[1] != B:
        raise ValueError(
            f"key {tuple(key.shape)} and value {tuple(value.shape)} must share (S, batch={B}) (time-major here)"
        )
    H, D = num_heads, E // num_heads
    b_q, b_k, b_v = in_proj_bias.chunk(3) if in_proj_bias is not None else (None, None, None)
    if in_proj_weight is not None:
        if in_proj_weight.shape != (3 * E, E):
            raise ValueError(f"in_proj_weight must be (3*E, E) = ({3 * E}, {E}), got {tuple(in_proj_weight.shape)}")
        w_q, w_k, w_v = in_proj_weight.chunk(3)
    elif q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
        raise ValueError("in_proj_weight=None needs q_proj_weight, k_proj_weight and v_proj_weight")
    else:
        w_q, w_k, w_v = q_proj_weight, k_proj_weight, v_proj_weight
    for name, w, x in (("q_proj_weight", w_q, query), ("k_proj_weight", w_k, key), ("v_proj_weight", w_v, value)):
        if w.shape != (E, x.shape[-1]):
            raise ValueError(
                f"{name} must be (embed_dim, input width) = ({E}, {x.shape[-1]}), got {tuple(w.shape)} "
                "(key/value widths other than embed_dim need kdim/vdim)"
            )
    q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)  # (L|S, B, E)
    pad_masks = lambda m: None if m is None else F.pad(m, (0, 1))  # noqa: E731  one more key that every query sees
    if (bias_k is None) != (bias_v is None):
        raise ValueError("bias_k and bias_v come together (add_bias_kv): pass both or neither")
    if bias_k is not None and bias_v is not None:
        k = torch.cat([k, bias_k.reshape(1, 1, E).expand(1, B, E)])  # (S+1, B, E)
        v = torch.cat([v, bias_v.reshape(1, 1, E).expand(1, B, E)])
        attn_mask, key_padding_mask = pad_masks(attn_mask), pad_masks(key_padding_mask)
    if add_zero_attn:
        k = torch.cat([k, k.new_zeros(1, B, E)])  # a zero key per head (zero in every head's slice)
        v = torch.cat([v, v.new_zeros(1, B, E)])
        attn_mask, key_padding_mask = pad_masks(attn_mask), pad_masks(key_padding_mask)
    S = k.shape[0]

    def heads(x: torch.Tensor, n: int) -> torch.Tensor:
        return x.reshape(n, B, H, D).permute(1, 2, 0, 3)  # (n, B, E) -> (B, H, n, D)

    q, k, v = heads(q, L), heads(k, S), heads(v, S)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(D)  # (B, H, L, S)
    mask = _merge_masks(key_padding_mask, attn_mask, B, H, L, S, scores.dtype)
    if mask is not None:
        scores = scores + mask
    if need_weights:
        weights = torch.softmax(scores, dim=-1)  # (B, H, L, S); fully masked rows give NaN, as torch's
    else:
        # torch takes the SDPA path without weights, where a row with every key masked gives 0
        # (and finite gradients); fill it with 0 before the softmax so no inf - inf appears
        dead = (scores == -math.inf).all(dim=-1, keepdim=True)  # (B, H, L, 1)
        weights = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)  # (B, H, L, S)
    out = (weights @ v).permute(2, 0, 1, 3).reshape(L, B, E)  # (B, H, L, D) -> (L, B, H, D) -> (L, B, E)
    out = F.linear(out, out_proj_weight, out_proj_bias)  # (L, B, E)
    if unbatched:
        out = out.squeeze(1)  # (L, E)
    elif batch_first:
        out = out.transpose(0, 1)  # (B, L, E)
    if not need_weights:
        return out, None
    w = weights.mean(dim=1) if average_attn_weights else weights  # (B, L, S) or (B, H, L, S)
    return out, (w.squeeze(0) if unbatched else w)


class MultiheadAttention(nn.Module):
    """:func:`multi_head_attention` with ``nn.MultiheadAttention``'s parameters and names.

    ``in_proj_weight`` (3E, E) (or ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim),
    ``v_proj_weight`` (E, vdim) when kdim or vdim differs from E), ``in_proj_bias`` (3E,),
    ``out_proj.weight`` (E, E), ``out_proj.bias`` (E,), ``bias_k``/``bias_v`` (1, 1, E) with
    ``add_bias_kv``, so ``load_state_dict`` copies weights from torch's module.
    Supported: ``embed_dim``, ``num_heads``, ``bias``, ``batch_first``, ``kdim``, ``vdim``,
    ``add_bias_kv``, ``add_zero_attn``. Refused (ValueError): ``dropout`` > 0 (its random
    mask could not be compared with torch's draw for draw).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
    ):
        super().__init__()
        if dropout != 0.0:
            raise ValueError(
                f"MultiheadAttention: dropout={dropout} is not supported (only 0.0); "
                "apply dropout outside the module or use nn.MultiheadAttention"
            )
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.batch_first = embed_dim, num_heads, batch_first
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.add_zero_attn = add_zero_attn
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * E, E))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = nn.Parameter(torch.empty(E, E))
            self.k_proj_weight = nn.Parameter(torch.empty(E, self.kdim))
            self.v_proj_weight = nn.Parameter(torch.empty(E, self.vdim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * E)) if bias else None
        self.out_proj = nn.Linear(E, E, bias=bias)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, E))
            self.bias_v = nn.Parameter(torch.empty(1, 1, E))
            nn.init.xavier_normal_(self.bias_k)  # torch's initialisation
            nn.init.xavier_normal_(self.bias_v)
        else:
            self.bias_k = self.bias_v = None
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                nn.init.xavier_uniform_(w)  # torch's initialisation

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiheadAttention:
        """A copy holding ``m``'s weights (same dtype and device), kdim/vdim, bias_k/bias_v
        and add_zero_attn included.

        Raises ValueError naming the setting when ``m`` has dropout > 0 (not supported).
        """
        if m.dropout:
            raise ValueError(
                f"MultiheadAttention.from_torch: dropout={m.dropout} not supported (only 0.0); "
                "build torch's module with dropout=0.0"
            )
        mine = cls(
            m.embed_dim,
            m.num_heads,
            bias=m.in_proj_bias is not None,
            add_bias_kv=m.bias_k is not None,
            add_zero_attn=m.add_zero_attn,
            kdim=m.kdim,
            vdim=m.vdim,
            batch_first=m.batch_first,
        )
        mine.to(m.out_proj.weight.device, m.out_proj.weight.dtype).load_state_dict(m.state_dict())
        return mine

    def forward(
        self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None, average_attn_weights=True
    ):
        return multi_head_attention(
            query,
            key,
            value,
            self.num_heads,
            self.in_proj_weight,
            self.in_proj_bias,
            self.out_proj.weight,
            self.out_proj.bias,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            average_attn_weights=average_attn_weights,
            batch_first=self.batch_first,
            q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight,
            bias_k=self.bias_k,
            bias_v=self.bias_v,
            add_zero_attn=self.add_zero_attn,
        )
