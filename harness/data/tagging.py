"""Tagged sentences (NER) as padded id tensors: vocabulary, tag list and encoding (5.09 rnn.ner)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

from harness.data.sets import TaggedSentences
from harness.data.sources import resolve
from harness.data.synthetic import synthetic_ner
from harness.data.text import WordTokenizer


def word_vocab(train: TaggedSentences) -> WordTokenizer:
    """Lowercased training tokens, as they are (no re-splitting), most frequent first."""
    counts = Counter(w.lower() for s in train.sentences for w in s)
    return WordTokenizer(sorted(counts, key=lambda w: (-counts[w], w)))


def tag_list(train: TaggedSentences) -> list[str]:
    """The training tag names with ``O`` first (added if absent)."""
    return list(train.tag_names) if "O" in train.tag_names else ["O", *train.tag_names]


def encode_tagged(data: TaggedSentences, words: WordTokenizer, tags: list[str]):
    """(ids (N, T), tag ids (N, T), lengths (N,)) int64; padded positions are 0 (mask them by
    length); unknown words map to ``<unk>``, unknown tags to ``O``."""
    index = {t: i for i, t in enumerate(tags)}
    lengths = torch.tensor([len(s) for s in data.sentences])
    ids = torch.zeros(len(data), int(lengths.max()), dtype=torch.int64)
    y = torch.zeros_like(ids)
    for i, (toks, tg) in enumerate(zip(data.sentences, data.tags)):
        ids[i, : len(toks)] = torch.tensor([words.stoi.get(w.lower(), words.unk_id) for w in toks])
        y[i, : len(tg)] = torch.tensor([index.get(t, index["O"]) for t in tg])
    return ids, y, lengths


def load_tagged(n_train: int, n_test: int, *, seed: int, real: bool, read: Callable[[Path], TaggedSentences]):
    """(train, test, description): ``conll2003/*train*`` and ``*test*`` under ``--data-dir`` read
    with ``read`` when ``real`` and present (the test file falls back to the train one), else
    ``harness.data.synthetic_ner`` sentences (test drawn with seed + 10,000)."""
    source = resolve("conll2003")
    if real and source.kind == "files" and source.path is not None:
        files = sorted(source.path.iterdir())
        tr = read(next(f for f in files if "train" in f.name))
        test = next((f for f in files if "test" in f.name), None)
        return tr, (read(test) if test else tr), str(source)
    tr = synthetic_ner(n_train, seed=seed)
    return tr, synthetic_ner(n_test, seed=seed + 10_000), tr.description
