"""6.06 decoder_generation: the check passes; a causal mask off by one, a KV cache that drops
the last key, a cache that forgets where it is (positions restart at 0) and a model that does
not learn are caught."""

import dataclasses

import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from models.transformer import KVCache

Task = REGISTRY.get("transformers.decoder_generation")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["held_out_loss_nats"] < rec.metrics["unigram_entropy_nats"]
    assert {c["name"] for c in rec.curves} >= {"train loss"}


def off_by_one_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    if is_causal:  # lets position t see t + 1
        attn_mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril(diagonal=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


def test_causal_mask_off_by_one_is_caught():
    class Wrong(Task):
        sdpa = staticmethod(off_by_one_sdpa)

    expect_check_fails(Wrong, match="causal")


class DropsLastKey(KVCache):
    def update(self, layer, k, v, offset):
        ks, vs = super().update(layer, k, v, offset)
        return (ks[:, :, :-1], vs[:, :, :-1]) if ks.shape[2] > 1 else (ks, vs)


def test_cache_that_drops_the_last_key_is_caught():
    class Wrong(Task):
        cache_cls = DropsLastKey

    expect_check_fails(Wrong, match="KV cache")


class OverwritesAtZero(KVCache):
    """Writes every new key at position 0 instead of at the current offset."""

    def update(self, layer, k, v, offset):
        return super().update(layer, k, v, 0)


def test_cache_written_at_the_wrong_offset_is_caught():
    class Wrong(Task):
        cache_cls = OverwritesAtZero

    expect_check_fails(Wrong, match="KV cache")


def test_model_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.0, steps=20)}

    expect_check_fails(Wrong, match="unigram")
