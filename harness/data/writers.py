"""Writers of the real on-disk formats, so checks can round-trip data through the readers.

* :func:`write_imdb`: the ``aclImdb`` layout ``<split>/<pos|neg>/<id>_<rating>.txt``
  (Maas et al. 2011) read by :func:`harness.data.read_imdb`;
* :func:`write_conll`: a CoNLL-2003 file (``token POS chunk tag`` in IOB1, ``-DOCSTART-``
  lines, blank lines between sentences) read by :func:`harness.data.read_conll`;
* :func:`bio_to_iob1`: the inverse of :func:`harness.data.iob1_to_bio`.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from harness.data.sets import TaggedSentences, TextClassificationSet
from harness.data.text_sets import IMDB_CLASSES


def write_imdb(root: Path, split: str, data: TextClassificationSet, seed: int) -> None:
    """Write reviews under ``root/<split>/<pos|neg>/<id>_<rating>.txt``: ratings 7-10 for
    positive, 1-4 for negative (seeded), sentence ends joined by ``<br /><br />`` as in real reviews."""
    g = torch.Generator().manual_seed(seed)
    for cls in IMDB_CLASSES:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
    for i, (text, label) in enumerate(zip(data.texts, data.labels.tolist())):
        lo, hi = (7, 11) if label == 1 else (1, 5)
        rating = int(torch.randint(lo, hi, (1,), generator=g))
        body = re.sub(r"([.!]) ", r"\1<br /><br />", text)
        (root / split / IMDB_CLASSES[label] / f"{i}_{rating}.txt").write_text(body, encoding="utf-8")


def bio_to_iob1(tags: list[str]) -> list[str]:
    """BIO -> IOB1 (CoNLL-2003's scheme): B-X only where it follows an X chunk directly."""
    out, prev = [], "O"
    for t in tags:
        if t.startswith("B-") and not (prev != "O" and prev[2:] == t[2:]):
            t = "I-" + t[2:]
        out.append(t)
        prev = t
    return out


def write_conll(path: Path, data: TaggedSentences, docs: int = 2) -> None:
    """Write sentences as a CoNLL-2003 file: ``token POS chunk tag`` (IOB1), documents
    opened by ``-DOCSTART- -X- -X- O``, blank lines after every sentence."""
    lines, per_doc = [], max(1, len(data) // docs)
    for i, (toks, tags) in enumerate(zip(data.sentences, data.tags)):
        if i % per_doc == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        lines += [f"{w} NNP I-NP {t}" for w, t in zip(toks, bio_to_iob1(tags))] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
