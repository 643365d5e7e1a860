"""Parallel (translation) data as padded id tensors: one vocabulary for every translation task.

:class:`ParallelVocab` fits word tokenizers on the *training* pairs only; the target one
holds ``<bos>`` and ``<eos>`` (ids 2 and 3, after ``<pad>`` 0 and ``<unk>`` 1).
:func:`load_translation_pairs` reads ``translation/*.tsv`` under ``--data-dir`` when asked
and present, else draws the synthetic toy language (``harness.data.synthetic_translation``).
Used by 5.04 rnn.seq2seq, 5.05 rnn.rnn_attention and 6.08 transformers.translation.
"""

from __future__ import annotations

import dataclasses

import torch

from harness.data.sets import ParallelSet
from harness.data.sources import resolve
from harness.data.synthetic import synthetic_translation
from harness.data.text import WordTokenizer
from harness.data.text_sets import read_parallel_tsv

BOS, EOS = "<bos>", "<eos>"


@dataclasses.dataclass
class Encoded:
    """A parallel set as 0-padded id tensors: src (N, S), src_len (N,), tgt_in (N, T) =
    bos + target, tgt_out (N, T) = target + eos, tgt_len (N,) (eos included)."""

    src: torch.Tensor
    src_len: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_len: torch.Tensor
    pairs: ParallelSet

    def head(self, n: int) -> Encoded:
        """The first ``n`` pairs."""
        return Encoded(self.src[:n], self.src_len[:n], self.tgt_in[:n], self.tgt_out[:n], self.tgt_len[:n], self.pairs)


class ParallelVocab:
    """Source and target word tokenizers fitted on the training pairs; target ``bos``/``eos`` ids."""

    def __init__(self, train: ParallelSet):
        self.src = WordTokenizer.fit(train.sources)
        self.tgt = WordTokenizer([BOS, EOS, *WordTokenizer.fit(train.targets).itos[2:]])
        self.bos, self.eos = self.tgt.stoi[BOS], self.tgt.stoi[EOS]
        self.tgt_size = len(self.tgt)

    def encode(self, pairs: ParallelSet) -> Encoded:
        src, src_len = self.src.encode_batch(pairs.sources)  # (N, S), (N,)
        tgt, tgt_len = self.tgt.encode_batch(pairs.targets)  # (N, T-1), (N,)
        n = tgt.shape[0]
        tgt_in = torch.cat([torch.full((n, 1), self.bos), tgt], dim=1)  # (N, T): bos y1 .. yT-1
        tgt_out = torch.cat([tgt, torch.zeros(n, 1, dtype=torch.int64)], dim=1)  # (N, T): y1 .. eos
        tgt_out[torch.arange(n), tgt_len] = self.eos
        return Encoded(src, src_len.clamp(min=1), tgt_in, tgt_out, tgt_len + 1, pairs)

    def decode(self, ids) -> str:
        """Target text of ``ids``, without bos, eos and padding."""
        return self.tgt.decode([int(i) for i in ids if int(i) not in (self.bos, self.eos)])


def load_translation_pairs(n_train: int, n_test: int, *, seed: int, max_adjectives: int = 2, real: bool = False):
    """(train, test, description): the first TSV under ``translation/`` split 90/10 when
    ``real`` and present (capped at n_train / n_test), else synthetic pairs (test drawn
    with another seed)."""
    source = resolve("translation")
    if real and source.kind == "files" and source.path is not None:
        files = sorted(p for p in source.path.iterdir() if p.suffix in (".tsv", ".txt"))
        full = read_parallel_tsv(files[0])
        n_te = max(1, len(full) // 10)
        train = ParallelSet(full.sources[n_te:][:n_train], full.targets[n_te:][:n_train], full.description)
        test = ParallelSet(full.sources[:n_te][:n_test], full.targets[:n_te][:n_test], full.description)
        return train, test, str(source)
    train = synthetic_translation(n_train, seed=seed, max_adjectives=max_adjectives)
    test = synthetic_translation(n_test, seed=seed + 10_000, max_adjectives=max_adjectives)
    return train, test, f"SYNTHETIC toy language: {train.description}"
