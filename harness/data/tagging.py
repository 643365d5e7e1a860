"""Tagged sentences (NER) as padded id tensors: vocabulary, tag list and encoding (5.09 rnn.ner)."""

from __future__ import annotations

from collections import Counter

import torch

from harness.data.sets import TaggedSentences
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
