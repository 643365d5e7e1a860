"""5.06 next_word: perplexity = exp(mean NLL), and it falls below unigram (its mutants: test_mutants.py)."""

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("rnn.next_word")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    m = rec.metrics
    assert m["check_final_perplexity"] < m["check_unigram_perplexity"] < m["check_initial_perplexity"]


def test_vocabulary_comes_from_train_only():
    cfg = Task.sizes["tiny"]
    tok, train, held, _, desc = Task().data(cfg)
    assert len(tok) == cfg.vocab_size + 2 and "standard-library" in desc
    assert int(train.max()) < len(tok) and int(held.max()) < len(tok)
    assert (held == tok.unk_id).any()  # held-out words outside the train vocabulary become <unk>
