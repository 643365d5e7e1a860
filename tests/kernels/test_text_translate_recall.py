"""kernels.text.translate (transformers.translation) and harness.data.recall (transformers.vs_lstm)."""

import pytest
import torch

from harness.data import synthetic_translation
from harness.data.parallel import ParallelVocab
from harness.data.recall import first_token_recall
from kernels.text import translate as tr
from models.transformer import Seq2SeqTransformer, preset


def test_unseen_keeps_only_new_sources():
    train, test = synthetic_translation(30, seed=1), synthetic_translation(30, seed=2)
    kept = tr.unseen(train, test)
    assert not set(kept.sources) & set(train.sources)
    assert all(test.targets[test.sources.index(s)] == t for s, t in zip(kept.sources, kept.targets))


def test_translate_and_cross_attention_shapes():
    pairs = synthetic_translation(20, seed=0)
    vocab = ParallelVocab(pairs)
    torch.manual_seed(0)
    model = Seq2SeqTransformer(preset("tiny", max_len=64), vocab.src.vocab_size, vocab.tgt.vocab_size)
    hyps, n_tokens, seconds = tr.translate(model, vocab, pairs.sources[:3], "cpu")
    assert len(hyps) == 3 and n_tokens >= 3 and seconds >= 0 and model.training
    attn, src_words, out_words = tr.cross_attention(model, vocab, pairs.sources[0], hyps[0], "cpu")
    assert attn.shape == (len(out_words), len(src_words)) and torch.allclose(attn.sum(-1), torch.ones(len(out_words)))


def test_first_token_recall_rejects_a_vocab_without_filler():
    x, y = first_token_recall(50, 8, vocab=10, keys=4, distractors=0.0, seed=0)
    assert torch.equal(x[:, 0], 1 + y) and (x[:, 1:] > 4).all()  # no distractors: only filler after position 0
    with pytest.raises(ValueError, match="filler"):
        first_token_recall(5, 4, vocab=5, keys=4, distractors=0.1, seed=0)
