"""kernels.text.rnn_lm and harness.lm_run: the corpus split, the perplexity (batched and float64
reference) and the per-batch averages the rnn.next_word mutants plant, and the language-model
run's prompted, seeded sampling."""

import math

import torch

from harness.data import CharTokenizer
from harness.lm_run import LanguageModelRun
from harness.train_text import lstm_lm
from kernels.text import rnn_lm


def test_split_corpus_fits_the_tokenizer_on_the_train_part_only():
    text = "ab" * 45 + "z" * 10 + "ignored"
    tok, train, held, train_text = rnn_lm.split_corpus(text, 100, CharTokenizer.fit)
    assert train_text == "ab" * 45 and len(train) == 90 and len(held) == 10
    assert "z" not in tok.stoi and (held == tok.unk_id).all()


def test_per_batch_averages_differ_from_the_perplexity_on_an_uneven_last_batch():
    model = lstm_lm(7, 4, 8, 1, "cpu", torch.float32, seed=0)
    x, y = torch.randint(0, 7, (5, 6)), torch.randint(0, 7, (5, 6))  # 5 windows: batches of 2, 2, 1
    with torch.no_grad():
        true = math.exp(float(torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())))
    assert math.isclose(true, rnn_lm.mean_of_batch_means(model, x, y, 5), rel_tol=1e-5)  # one batch: right
    assert not math.isclose(true, rnn_lm.mean_of_batch_means(model, x, y, 2), rel_tol=1e-5)
    assert rnn_lm.mean_of_perplexities(model, x, y, 2) >= rnn_lm.mean_of_batch_means(model, x, y, 2)  # Jensen


def test_sample_is_seeded_restores_the_mode_and_uses_the_prompt():
    model = lstm_lm(9, 4, 8, 1, "cpu", torch.float32, seed=0)
    tok = CharTokenizer.fit("abcdefg")
    run = LanguageModelRun()
    prompt = torch.tensor([[2, 3, 4, 5]])
    a, b = (run.sample(model, tok, prompt, 20, seed=1) for _ in range(2))
    assert torch.equal(a, b) and a.shape == (1, 20) and model.training
    assert not ((a == tok.pad_id) | (a == tok.unk_id)).any()
    other = run.sample(model, tok, prompt[:, -1:], 20, seed=1)  # no context: another state
    assert not torch.equal(a, other)


def test_perplexity_sums_over_batches_and_matches_the_float64_reference():
    model = lstm_lm(7, 4, 8, 1, "cpu", torch.float32, seed=0)
    x, y = torch.randint(0, 7, (5, 6)), torch.randint(0, 7, (5, 6))  # 5 windows: batches of 2, 2, 1
    with torch.no_grad():
        true = math.exp(float(torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())))
    want = rnn_lm.reference_perplexity(model, x, y, "cpu")
    assert math.isclose(true, want, rel_tol=1e-5) and model.training
    assert math.isclose(rnn_lm.perplexity(model, x, y, 2, "cpu"), want, rel_tol=1e-5) and model.training
