"""Plausible wrong pieces of rnn.imdb_sentiment's pipeline (its mutants): its checks must reject each."""

from __future__ import annotations

import dataclasses

import torch.nn.functional as F

from harness.data import WordTokenizer, read_imdb


def swaps_labels(root, split, **kw):
    """``harness.data.read_imdb`` that reads pos as 0 and neg as 1."""
    d = read_imdb(root, split, **kw)
    return dataclasses.replace(d, labels=1 - d.labels)


def vocab_on_all_text(train, test, cfg) -> WordTokenizer:
    """The vocabulary fitted on train + test texts: test-only words get ids (a leak)."""
    return WordTokenizer.fit(train.texts + test.texts, max_size=cfg.vocab_size)


def never_steps(model, opt, batch):
    """``harness.train_text.length_step`` without ``opt.step()``: the weights never move."""
    ids, lengths, y = batch
    loss = F.cross_entropy(model(ids, lengths), y)
    loss.backward()
    return loss.detach()
