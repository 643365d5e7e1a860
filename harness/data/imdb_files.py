"""Synthetic reviews written as IMDB folders, so the IMDB reader is exercised without the real set.

:func:`write_synthetic_imdb` writes ``harness.data.synthetic_reviews`` in the layout of the
Large Movie Review Dataset (Maas et al., ACL 2011): ``aclImdb/{train,test}/{pos,neg}/
<id>_<rating>.txt`` (``harness.data.writers.write_imdb``: ratings 7-10 / 1-4, ``<br />``
breaks), for rnn.imdb_sentiment's round-trip and train-only-vocabulary checks;
:func:`pairs_differing` counts what the reader did not give back; :func:`imdb_or_synthetic`
reads the real folders when present, else the synthetic ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.data.sets import TextClassificationSet
from harness.data.sources import resolve
from harness.data.synthetic import GENERATORS, synthetic_reviews
from harness.data.writers import write_imdb


def write_synthetic_imdb(
    root: Path, n_train: int, n_test: int, seed: int, planted: str
) -> tuple[TextClassificationSet, TextClassificationSet]:
    """Write ``n_train`` / ``n_test`` balanced synthetic reviews (seeds ``seed`` and ``seed`` +
    10,000) as IMDB folders under ``root``; the word ``planted`` is appended to the first test
    review only (a word no training text has). Returns (train, test) as written."""
    train = synthetic_reviews(n_train, seed=seed)
    test = synthetic_reviews(n_test, seed=seed + 10_000)
    test = dataclasses.replace(test, texts=[test.texts[0] + f" a {planted} moment .", *test.texts[1:]])
    write_imdb(root, "train", train, seed)
    write_imdb(root, "test", test, seed + 1)
    return train, test


def pairs_differing(written: TextClassificationSet, read: TextClassificationSet) -> int:
    """How many of the sorted (label, text) pairs of ``read`` (whitespace runs, such as the
    ``<br />`` breaks the reader turns into spaces, collapsed to one space) differ from ``written``'s."""
    want = sorted(zip(written.labels.tolist(), written.texts))
    got = sorted(zip(read.labels.tolist(), (" ".join(t.split()) for t in read.texts)))
    return sum(a != b for a, b in zip(got, want)) + abs(len(got) - len(want))


def imdb_or_synthetic(
    read, workdir: Path, *, real: bool, per_class: int, n_train: int, n_test: int, seed: int, planted: str
) -> tuple[TextClassificationSet, TextClassificationSet, str]:
    """(train, test, description), both splits read by ``read`` (``harness.data.read_imdb``'s
    signature): the real ``aclImdb`` folders (``resolve("imdb")``, at most ``per_class`` reviews
    per class and split) when ``real`` and present, else :func:`write_synthetic_imdb`'s files,
    written once under ``workdir / "aclImdb"``."""
    source = resolve("imdb")
    if real and source.kind == "files":
        return (
            read(source.path, "train", max_per_class=per_class),
            read(source.path, "test", max_per_class=per_class),
            str(source),
        )
    root = workdir / "aclImdb"
    if not (root / "train").is_dir():
        write_synthetic_imdb(root, n_train, n_test, seed, planted)
    desc = f"synthetic: {GENERATORS['reviews']} (seed {seed}), via IMDB-layout files"
    return read(root, "train"), read(root, "test"), desc
