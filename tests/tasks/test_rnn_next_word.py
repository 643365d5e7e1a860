"""5.06 next_word: perplexity = exp(mean NLL), and it falls below unigram; planted bugs are caught."""

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("rnn.next_word")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    m = rec.metrics
    assert m["check_final_perplexity"] < m["check_unigram_perplexity"] < m["check_initial_perplexity"]


def _batch_nll(model, x, y, batch, device):
    model.eval()
    with torch.no_grad():
        out = [
            F.cross_entropy(model(x[i : i + batch]).flatten(0, 1), y[i : i + batch].flatten())
            for i in range(0, x.shape[0], batch)
        ]
    model.train()
    return torch.stack(out)


class MeanOfBatchMeans(Task):
    """The smaller last batch weighs as much as a full one."""

    def perplexity(self, model, x, y, batch, device):
        return math.exp(float(_batch_nll(model, x, y, batch, device).mean()))


class MeanOfPerplexities(Task):
    def perplexity(self, model, x, y, batch, device):
        return float(_batch_nll(model, x, y, batch, device).exp().mean())


class NeverSteps(Task):
    sizes = {**Task.sizes, "tiny": dataclasses.replace(Task.sizes["tiny"], steps=5)}

    def train_step(self, model, opt, window):
        loss = F.cross_entropy(model(window[:, :-1]).flatten(0, 1), window[:, 1:].flatten())
        loss.backward()
        return loss.detach()


def test_mean_of_batch_means_is_caught():
    expect_check_fails(MeanOfBatchMeans, match="perplexity = exp(mean NLL)")


def test_mean_of_batch_perplexities_is_caught():
    expect_check_fails(MeanOfPerplexities, match="perplexity = exp(mean NLL)")


def test_model_that_never_trains_is_caught():
    expect_check_fails(NeverSteps, match="below the unigram perplexity")


def test_vocabulary_comes_from_train_only():
    cfg = Task.sizes["tiny"]
    tok, train, held, desc = Task().data(cfg)
    assert len(tok) == cfg.vocab_size + 2 and "standard-library" in desc
    assert int(train.max()) < len(tok) and int(held.max()) < len(tok)
    assert (held == tok.unk_id).any()  # held-out words outside the train vocabulary become <unk>
