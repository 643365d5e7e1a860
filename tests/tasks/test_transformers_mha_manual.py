"""6.07 mha_manual: the check passes; a missing 1/sqrt(d) scale, heads split along the wrong
axis, an inverted key-padding polarity and per-head weights summed instead of averaged are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.layers import attention
from kernels.layers.attention import MultiheadAttention

Task = REGISTRY.get("transformers.mha_manual")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["manual (float64)"]["max_abs_err"] < 1e-12


def _planted(forward):
    class Broken(MultiheadAttention):
        def forward(
            self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None, average_attn_weights=True
        ):
            return forward(self, query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights)

    class Wrong(Task):
        manual_cls = Broken

    return Wrong


def _call(self, q, k, v, kpm, need_weights, mask, average):
    return attention.multi_head_attention(
        q,
        k,
        v,
        self.num_heads,
        self.in_proj_weight,
        self.in_proj_bias,
        self.out_proj.weight,
        self.out_proj.bias,
        key_padding_mask=kpm,
        need_weights=need_weights,
        attn_mask=mask,
        average_attn_weights=average,
        batch_first=self.batch_first,
    )


def test_missing_scale_is_caught():
    def no_scale(self, q, k, v, kpm, need_weights, mask, average):
        # scaling the query projection by sqrt(D) cancels the 1/sqrt(D) inside
        D = self.embed_dim // self.num_heads
        w = self.in_proj_weight.detach().clone()
        b = self.in_proj_bias.detach().clone()
        E = self.embed_dim
        w[:E] *= D**0.5
        b[:E] *= D**0.5
        return attention.multi_head_attention(
            q,
            k,
            v,
            self.num_heads,
            w,
            b,
            self.out_proj.weight,
            self.out_proj.bias,
            key_padding_mask=kpm,
            need_weights=need_weights,
            attn_mask=mask,
            average_attn_weights=average,
            batch_first=self.batch_first,
        )

    expect_check_fails(_planted(no_scale), match="manual", dtype=torch.float32)


def test_inverted_key_padding_is_caught():
    def inverted(self, q, k, v, kpm, need_weights, mask, average):
        if kpm is not None and kpm.dtype == torch.bool:
            kpm = ~kpm  # the F.sdpa polarity (True = keep) used where torch's module means "ignore"
            kpm[..., 0] = False
        return _call(self, q, k, v, kpm, need_weights, mask, average)

    expect_check_fails(_planted(inverted), match="manual", dtype=torch.float32)


def test_summed_head_weights_are_caught():
    def summed(self, q, k, v, kpm, need_weights, mask, average):
        out, w = _call(self, q, k, v, kpm, need_weights, mask, False)
        if w is not None and average:
            w = w.sum(dim=1)
        return out, w

    expect_check_fails(_planted(summed), match="manual", dtype=torch.float32)


def test_heads_split_along_the_wrong_axis_is_caught():
    real_mha = attention.multi_head_attention

    def wrong_split(query, key, value, num_heads, *args, **kwargs):
        # (n, B, E) read as (n, B, D, H): each "head" takes every H-th feature
        H = num_heads
        perm = torch.arange(query.shape[-1]).view(H, -1).t().reshape(-1)
        w_in, b_in, w_out, b_out = args
        w_in = torch.cat([w[perm] for w in w_in.chunk(3)])
        b_in = torch.cat([b[perm] for b in b_in.chunk(3)])
        out, w = real_mha(query, key, value, num_heads, w_in, b_in, w_out[:, perm], b_out, **kwargs)
        return out, w

    class Broken(MultiheadAttention):
        def forward(
            self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None, average_attn_weights=True
        ):
            return wrong_split(
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
            )

    class Wrong(Task):
        manual_cls = Broken

    expect_check_fails(Wrong, match="manual", dtype=torch.float32)
