"""research.bert_mlm: exact BERT-base/large counts with the pooler (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from models.bert import BERT_BASE, BERT_LARGE, BERT_VOCAB, BertMLM
from models.transformer import TransformerConfig

Task = REGISTRY.get("research.bert_mlm")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"BERT-base count", "masking 15 % then 80/10/10", "MLM loss falls"} <= set(rec.checks)


def test_bert_counts_with_and_without_pooler():
    with torch.device("meta"):
        base, large = BertMLM(BERT_BASE, BERT_VOCAB), BertMLM(BERT_LARGE, BERT_VOCAB)
    n = sum(p.numel() for p in base.body_parameters())
    assert n == 109_482_240
    assert n - (768 * 768 + 768) == 108_891_648  # without the pooler
    assert base.encoder.tok.weight.numel() == 23_440_896  # the WordPiece table: 21 % of BERT-base
    assert sum(p.numel() for p in large.body_parameters()) == 335_141_888


def test_token_types_change_the_output():
    torch.manual_seed(0)
    m = BertMLM(TransformerConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=8), 20)
    ids = torch.randint(3, 20, (2, 8))
    assert m(ids).shape == (2, 8, 20)
    assert not torch.allclose(m(ids), m(ids, torch.ones_like(ids)))
