"""6.01 sdpa: the check passes; a missing 1/sqrt(d) scale, a causal mask off by one, a blocked
softmax that forgets to rescale, and a "blocked" version that still builds the whole score
matrix are caught."""

import math

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.layers.attention import sdpa_naive

Task = REGISTRY.get("transformers.sdpa")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    names = {n.replace(" (float32)", "").replace(" (float64)", "") for n in rec.checks}  # per-dtype suffixes
    assert {
        "naive",
        "blocked",
        "naive: dQ, dK, dV",
        "blocked: dQ, dK, dV",
        "blocked peak memory is linear",
        "naive peak memory is quadratic",
    } <= names
    assert any("peak memory" in n for n in rec.notes)


def _unscaled(q, k, v, mask, causal):
    return sdpa_naive(q, k, v, attn_mask=mask, is_causal=causal, scale=1.0)


def test_missing_scale_is_caught():
    wrong = planted(Task, "naive", lambda self, q, k, v, mask, causal, block: lambda: _unscaled(q, k, v, mask, causal))
    expect_check_fails(wrong, match="naive", dtype=torch.float32)


def test_causal_mask_off_by_one_is_caught():
    def off_by_one(self, q, k, v, mask, causal, block):
        if causal:  # lets query i see key i + 1
            mask, causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(diagonal=1), False
        return lambda: sdpa_naive(q, k, v, attn_mask=mask, is_causal=causal)

    expect_check_fails(planted(Task, "naive", off_by_one), match="is_causal", dtype=torch.float32)


def _blocked_no_rescale(q, k, v, mask, causal, block):
    """Online softmax that never rescales the running sums when the max grows."""
    L, S = q.shape[-2], k.shape[-2]
    if causal:
        mask = torch.ones(L, S, dtype=torch.bool).tril()
    q = q / math.sqrt(q.shape[-1])
    m = torch.full((*q.shape[:-1], 1), -math.inf, dtype=q.dtype)
    l = torch.zeros_like(m)
    acc = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype)
    for j0 in range(0, S, block):
        s = q @ k[..., j0 : j0 + block, :].transpose(-2, -1)
        if mask is not None:
            blk = mask[..., j0 : j0 + block]
            s = s.masked_fill(~blk, -math.inf) if blk.dtype == torch.bool else s + blk
        m = torch.maximum(m, s.amax(-1, keepdim=True))
        p = torch.exp(s - torch.where(torch.isneginf(m), 0.0, m))
        l = l + p.sum(-1, keepdim=True)
        acc = acc + p @ v[..., j0 : j0 + block, :]
    return acc / torch.where(l == 0, 1.0, l)


def test_blocked_without_rescaling_is_caught():
    wrong = planted(
        Task,
        "blocked",
        lambda self, q, k, v, mask, causal, block: lambda: _blocked_no_rescale(q, k, v, mask, causal, block),
    )
    expect_check_fails(wrong, match="blocked", dtype=torch.float32)


def test_blocked_that_materialises_the_scores_is_caught():
    # right values, quadratic memory: only the memory check can see it
    wrong = planted(
        Task,
        "blocked",
        lambda self, q, k, v, mask, causal, block: lambda: sdpa_naive(q, k, v, attn_mask=mask, is_causal=causal),
    )
    expect_check_fails(wrong, match="not linearly", dtype=torch.float32)
