"""Writers of the real on-disk formats, so checks can round-trip data through the readers.

* :func:`write_imdb`: the ``aclImdb`` layout ``<split>/<pos|neg>/<id>_<rating>.txt``
  (Maas et al. 2011) read by :func:`harness.data.read_imdb`;
* :func:`write_conll`: a CoNLL-2003 file (``token POS chunk tag`` in IOB1, ``-DOCSTART-``
  lines, blank lines between sentences) read by :func:`harness.data.read_conll`;
* :func:`write_planetoid`: Planetoid's ``ind.<name>.*`` files read by
  :func:`harness.data.planetoid.read_planetoid`;
* :func:`bio_to_iob1`: the inverse of :func:`harness.data.iob1_to_bio`.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp
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


def write_planetoid(folder: Path, name: str, *, n_all: int = 560, n_test: int = 40, gap: int = 0, classes: int = 3,
                    feats: int = 8, seed: int = 0):  # fmt: skip
    """Write ``ind.<name>.*`` (Planetoid's pickles, protocol 2 as the originals) for ``n_all``
    non-test nodes, ``n_test`` test nodes listed in shuffled order and ``gap`` unlisted ids inside
    the test range (Citeseer's isolated nodes); labels 0/1 bag-of-words features and a random
    symmetric graph with one self loop. Returns (x float32 (N, F), y int64 (N,), test ids in file order)."""
    rng = np.random.default_rng(seed)
    n = n_all + n_test + gap
    x = (rng.random((n, feats)) < 0.3).astype(np.float32)  # (N, F) bag of words
    y = rng.integers(0, classes, n)
    listed = np.arange(n_all, n)
    if gap:  # Citeseer: ids inside the test range that the file does not list (isolated nodes)
        listed = np.delete(listed, rng.choice(len(listed) - 2, gap, replace=False) + 1)
    test_ids = rng.permutation(listed)  # file order != sorted order
    parts: dict[str, object] = {
        "x": sp.csr_matrix(x[: 2 * classes]), "y": np.eye(classes)[y[: 2 * classes]],
        "allx": sp.csr_matrix(x[:n_all]), "ally": np.eye(classes)[y[:n_all]],
        "tx": sp.csr_matrix(x[test_ids]), "ty": np.eye(classes)[y[test_ids]],
    }  # fmt: skip
    graph: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in rng.integers(0, n, (3 * n, 2)):
        if a != b:
            graph[int(a)].append(int(b))
            graph[int(b)].append(int(a))
    graph[5].append(5)  # a self loop: dropped by both readers
    parts["graph"] = graph
    for k, v in parts.items():
        with open(folder / f"ind.{name}.{k}", "wb") as f:
            pickle.dump(v, f, protocol=2)
    (folder / f"ind.{name}.test.index").write_text("\n".join(str(i) for i in test_ids) + "\n")
    return torch.from_numpy(x), torch.from_numpy(y), test_ids
