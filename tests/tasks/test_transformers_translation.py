"""6.08 translation: the check passes; a decoder whose self-attention is not causal (it copies
the answer during teacher forcing and cannot decode) and a model that does not learn are caught."""

import dataclasses

import torch.nn.functional as F

from harness import REGISTRY
from harness.data import synthetic_translation
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("transformers.translation")
module = __import__(Task.__module__, fromlist=["Vocab"])


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["exact_match"] >= 0.9
    assert rec.metrics["train_target_tokens_per_s"] > 0


def test_vocab_shifts_targets_by_one():
    pairs = synthetic_translation(5, seed=3)
    v = module.Vocab(pairs)
    src, tin, tout = v.encode(pairs)
    assert (tin[:, 0] == v.bos).all()
    words = (tout[:, :-1] != 0) & (tout[:, :-1] != v.eos)
    assert (tin[:, 1:][words] == tout[:, :-1][words]).all()
    assert ((tout == v.eos).sum(1) == 1).all()


def non_causal_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)  # is_causal ignored


def test_non_causal_decoder_is_caught():
    class Wrong(Task):
        sdpa = staticmethod(non_causal_sdpa)
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], steps=120)}  # the loss still falls: it copies

    expect_check_fails(Wrong, match="greedy decoding got")


def test_model_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.0, steps=30)}

    expect_check_fails(Wrong, match="loss")
