"""5.05 rnn_attention: weights sum to 1, padding gets 0, attention beats none; planted bugs are caught."""

import dataclasses

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from models.seq2seq import AdditiveAttention, MultiplicativeAttention

Task = REGISTRY.get("rnn.rnn_attention")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    m = rec.metrics
    assert m["check_exact_match.bahdanau"] - m["check_exact_match.none"] >= Task.sizes["tiny"].min_margin
    assert rec.checks["padded positions get exactly 0"]["n"] == 9


class MaskAfterSoftmax(MultiplicativeAttention):
    """Zeroes padded weights after the softmax: they are 0, but rows no longer sum to 1."""

    def forward(self, query, keys, mask, keys_proj=None):
        scores = torch.bmm(self.project_keys(keys), query[:, :, None])[..., 0]
        w = torch.softmax(scores, dim=-1) * mask
        return torch.bmm(w[:, None, :], keys)[:, 0], w


class NoMask(AdditiveAttention):
    """Forgets the mask: padding takes part in the softmax."""

    def forward(self, query, keys, mask, keys_proj=None):
        return super().forward(query, keys, torch.ones_like(mask), keys_proj)


class SoftmaxOverBatch(MultiplicativeAttention):
    def forward(self, query, keys, mask, keys_proj=None):
        scores = torch.bmm(self.project_keys(keys), query[:, :, None])[..., 0].masked_fill(~mask, float("-inf"))
        w = torch.softmax(scores, dim=0).nan_to_num()
        return torch.bmm(w[:, None, :], keys)[:, 0], w


def _with(name, factory):
    mods = {**Task.attention_modules, name: factory}
    return type("Planted", (Task,), {"attention_modules": mods, "__doc__": Task.__doc__})


def test_mask_after_softmax_is_caught():
    expect_check_fails(_with("luong (general)", lambda dq, dk: MaskAfterSoftmax(dq, dk)), match="weights sum to 1")


def test_missing_mask_is_caught():
    expect_check_fails(_with("bahdanau (additive)", lambda dq, dk: NoMask(dq, dk, 16)), match="padded positions")


def test_softmax_over_the_wrong_axis_is_caught():
    expect_check_fails(_with("luong (dot)", lambda dq, dk: SoftmaxOverBatch(dq, dk, "dot")), match="weights sum to 1")


class ContextIgnored(Task):
    """Every variant silently trains the attention-free model (a decoder that ignores its context)."""

    sizes = {
        **Task.sizes,
        "tiny": dataclasses.replace(
            Task.sizes["tiny"], translation=dataclasses.replace(Task.sizes["tiny"].translation, steps=10)
        ),
    }

    def run_variant(self, ctx, cfg, variant, seed, data=None):
        return super().run_variant(ctx, cfg, "none", seed, data)


def test_attention_that_does_not_help_is_caught():
    expect_check_fails(ContextIgnored, match="margin below")
