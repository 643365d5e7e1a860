"""Wrong multi-head attention modules: the mutants of transformers.mha_manual, each a plausible mistake.

Each subclasses :class:`kernels.layers.attention.MultiheadAttention` (built with ``from_torch``
from an ``nn.MultiheadAttention``) and bends its weights or options before the shared functional
call :func:`kernels.layers.attention.multi_head_attention`; the task's check against
``nn.MultiheadAttention`` must catch each one (``tests/tasks/test_mutants.py``).

:func:`sdpa_blocked_no_rescale` is a mutant of transformers.sdpa, beside
:func:`kernels.layers.attention.sdpa_blocked` which it mirrors.
"""

from __future__ import annotations

import math

import torch

from kernels.layers import attention
from kernels.layers.attention import MultiheadAttention


class _Planted(MultiheadAttention):
    """The hand module with its weights or options bent before the shared functional call."""

    def call(self, q, k, v, kpm, need_weights, mask, average, w_in=None, b_in=None, w_out=None):
        return attention.multi_head_attention(
            q,
            k,
            v,
            self.num_heads,
            self.in_proj_weight if w_in is None else w_in,
            self.in_proj_bias if b_in is None else b_in,
            self.out_proj.weight if w_out is None else w_out,
            self.out_proj.bias,
            key_padding_mask=kpm,
            need_weights=need_weights,
            attn_mask=mask,
            average_attn_weights=average,
            batch_first=self.batch_first,
        )

    def forward(
        self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None, average_attn_weights=True
    ):
        return self.call(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights)


class NoScale(_Planted):
    """WRONG: the query projection scaled by sqrt(D) cancels the 1/sqrt(D) inside (no scale)."""

    def call(self, q, k, v, kpm, need_weights, mask, average, **_):
        E, D = self.embed_dim, self.embed_dim // self.num_heads
        w, b = self.in_proj_weight.detach().clone(), self.in_proj_bias.detach().clone()
        w[:E], b[:E] = w[:E] * D**0.5, b[:E] * D**0.5
        return super().call(q, k, v, kpm, need_weights, mask, average, w_in=w, b_in=b)


class InvertedPadding(_Planted):
    """WRONG: a boolean key_padding_mask read with F.sdpa's polarity (True = keep) where the
    module means "ignore" (the first key is kept so no row is fully masked)."""

    def call(self, q, k, v, kpm, need_weights, mask, average, **_):
        if kpm is not None and kpm.dtype == torch.bool:
            kpm = ~kpm
            kpm[..., 0] = False
        return super().call(q, k, v, kpm, need_weights, mask, average)


class SummedHeads(_Planted):
    """WRONG: per-head attention weights summed instead of averaged."""

    def call(self, q, k, v, kpm, need_weights, mask, average, **_):
        out, w = super().call(q, k, v, kpm, need_weights, mask, False)
        return out, (w.sum(dim=1) if w is not None and average else w)


class HeadsSplitWrong(_Planted):
    """WRONG: (n, B, E) read as (n, B, D, H): each "head" takes every H-th feature."""

    def call(self, q, k, v, kpm, need_weights, mask, average, **_):
        perm = torch.arange(self.embed_dim).view(self.num_heads, -1).t().reshape(-1)
        w_in = torch.cat([w[perm] for w in self.in_proj_weight.chunk(3)])
        b_in = torch.cat([b[perm] for b in self.in_proj_bias.chunk(3)])
        return super().call(q, k, v, kpm, need_weights, mask, average, w_in, b_in, self.out_proj.weight[:, perm])


# transformers.sdpa
def sdpa_blocked_no_rescale(q, k, v, mask, causal, block):
    """WRONG: :func:`~kernels.layers.attention.sdpa_blocked` whose online softmax never rescales
    the running sums when the max grows. q (B, H, L, D), k and v (B, H, S, D) -> (B, H, L, D)."""
    L, S = q.shape[-2], k.shape[-2]
    mask = torch.ones(L, S, dtype=torch.bool, device=q.device).tril() if causal else mask
    q = q / math.sqrt(q.shape[-1])
    m = torch.full((*q.shape[:-1], 1), -math.inf, dtype=q.dtype, device=q.device)  # (B, H, L, 1)
    l, acc = torch.zeros_like(m), torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
    for j0 in range(0, S, block):
        s = q @ k[..., j0 : j0 + block, :].transpose(-2, -1)  # (B, H, L, block)
        if mask is not None:
            blk = mask[..., j0 : j0 + block]
            s = s.masked_fill(~blk, -math.inf) if blk.dtype == torch.bool else s + blk
        m = torch.maximum(m, s.amax(-1, keepdim=True))
        p = torch.exp(s - torch.where(torch.isneginf(m), 0.0, m))
        l, acc = l + p.sum(-1, keepdim=True), acc + p @ v[..., j0 : j0 + block, :]
    return acc / torch.where(l == 0, 1.0, l)
