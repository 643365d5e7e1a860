"""Movie-review sentiment for the text-classification drills: real IMDB folders when present,
else the labelled SYNTHETIC stand-in.

The real set is the Large Movie Review Dataset (Maas et al., ACL 2011: ``aclImdb/train/pos/*.txt``
... 25,000 train and 25,000 test reviews), read by :func:`harness.data.read_imdb` from
``$DRILLS_DATA_DIR`` (:func:`harness.data.resolve`); without it,
:func:`harness.data.synthetic_reviews` (template reviews whose sentences carry the label's
polarity 80 % of the time, with negations, so a bag of words does not reach 100 %).
"""

from __future__ import annotations

import torch

from harness.data.sets import TextClassificationSet
from harness.data.sources import resolve
from harness.data.synthetic import synthetic_reviews
from harness.data.text_sets import read_imdb


def load_reviews(n_train: int, n_test: int) -> tuple[TextClassificationSet, TextClassificationSet, str]:
    """(train, test, description): at most ``n_train`` / ``n_test`` IMDB reviews (a seeded random
    subset: the files come sorted by class), else that many synthetic ones (seeds 0 and 1),
    described as a SYNTHETIC stand-in."""
    src = resolve("imdb")
    if src.kind == "files" and src.path is not None:
        tr, te = read_imdb(src.path, "train"), read_imdb(src.path, "test")
        g = torch.Generator().manual_seed(0)  # the files come sorted by class: shuffle before capping
        tr = tr.take(torch.randperm(len(tr), generator=g)[:n_train])
        te = te.take(torch.randperm(len(te), generator=g)[:n_test])
        return tr, te, tr.description
    tr, te = synthetic_reviews(n_train, seed=0), synthetic_reviews(n_test, seed=1)
    return tr, te, f"SYNTHETIC stand-in for IMDB (no aclImdb folders found): {tr.description}"
