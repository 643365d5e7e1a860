"""Plausible wrong versions of the Transformer text pieces, each beside the right one it mirrors.

research.bert_mlm, research.gpt2_repro, transformers.translation and transformers.vs_lstm declare
them as mutants: their checks must reject every one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.bert import BertMLM
from models.transformer import GPT, TransformerConfig


class NoPooler(BertMLM):
    """Counts BertModel without the pooler (the 768 x 768 + 768 after [CLS])."""

    def body_parameters(self):
        return [p for p in super().body_parameters() if all(p is not q for q in self.pooler.parameters())]


def ninety_five_five(ids, *, mask_id, first_ordinary, vocab_size, pad_id=0, select_p=0.15, generator=None):
    """:func:`kernels.text.mlm.mlm_mask` with a 90/5/5 split of the selected tokens where BERT uses 80/10/10."""
    sel = (torch.rand(ids.shape, generator=generator) < select_p) & (ids != pad_id)
    u = torch.rand(ids.shape, generator=generator)
    rnd = torch.randint(first_ordinary, vocab_size, ids.shape, generator=generator)
    out = torch.where(sel & (u < 0.9), mask_id, torch.where(sel & (u < 0.95), rnd, ids))
    return out, torch.where(sel, ids, -100)


def untied_gpt(cfg: TransformerConfig, vocab: int) -> GPT:
    """A ``models.transformer.GPT`` whose lm_head gets a matrix of its own (vocab x d_model) instead of
    sharing the token embedding's."""
    m = GPT(cfg, vocab)
    m.lm_head.weight = torch.nn.Parameter(torch.empty_like(m.lm_head.weight))
    return m


def non_causal_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    """``F.scaled_dot_product_attention`` that ignores ``is_causal``: a decoder built on it sees the
    answer during teacher forcing (transformers.translation's mutant)."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


# -- transformers.vs_lstm: a task's make_model(self, variant, config, T) with one variant changed --


def for_variant(make_model, variant: str, change):
    """``make_model`` whose model for ``variant`` goes through ``change(model)`` (the others as built)."""

    def patched(self, v, config, T):
        model = make_model(self, v, config, T)
        return change(model) if v == variant else model

    return patched


def without_positions(model):
    """An ``EncoderClassifier`` without its positional embedding: a bag of tokens cannot tell which
    key came first."""
    model.encoder.pos = None
    return model


def frozen_lstm(model):
    """A ``models.sequence.SequenceModel`` where only the head trains, on zero embeddings: nothing
    is remembered."""
    for p in model.parameters():
        p.requires_grad_(False)
    model.head.weight.requires_grad_(True)
    with torch.no_grad():
        model.embed.weight.zero_()
    return model


def lstm_half_budget(model, opt, train, **kw):
    """``harness.train.fit`` that gives a model without an ``encoder`` (the LSTM) half the steps."""
    from harness.train import fit

    if not hasattr(model, "encoder"):
        kw["max_steps"] = kw["max_steps"] // 2
    return fit(model, opt, train, **kw)
