"""Worked examples of CoNLL's ``conlleval`` chunk scoring, with their known scores.

Each case is hand-derived from conlleval's rules (see ``kernels/text/ner_metrics.py``):
the boundary cases a scorer gets wrong (an I- without a B-, a type change inside a chunk,
adjacent entities, a chunk split by a sentence break, a partial overlap, P != R). The first
is seqeval's README example. Used by 5.09 ``rnn.ner``'s check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kernels.text.ner_metrics import NERScores, TypeScore

# (name, gold, predicted, (correct, gold chunks, guessed chunks, P, R, F1, token accuracy)),
# derived by hand from conlleval's rules (see kernels/text/ner_metrics.py)
WORKED_EXAMPLES = [
    (
        "seqeval README example",
        [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]],
        [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]],
        (1, 2, 2, 0.5, 0.5, 0.5, 0.8),
    ),
    (
        "I- without B- opens a chunk",
        [["B-PER", "I-PER", "O"]],
        [["I-PER", "I-PER", "O"]],
        (1, 1, 1, 1.0, 1.0, 1.0, 2 / 3),
    ),
    (
        "type change inside a chunk",
        [["B-PER", "I-PER", "O"]],
        [["B-PER", "I-LOC", "O"]],
        (0, 1, 2, 0.0, 0.0, 0.0, 2 / 3),
    ),
    (
        "adjacent entities of one type",
        [["B-PER", "B-PER", "O"]],
        [["B-PER", "I-PER", "O"]],
        (0, 2, 1, 0.0, 0.0, 0.0, 2 / 3),
    ),
    (
        "adjacent entities of two types",
        [["B-PER", "B-LOC", "I-LOC"]],
        [["B-PER", "B-LOC", "I-LOC"]],
        (2, 2, 2, 1.0, 1.0, 1.0, 1.0),
    ),
    (
        "sentence break ends a chunk",
        [["O", "B-LOC"], ["I-LOC", "O"]],
        [["O", "B-LOC"], ["B-LOC", "O"]],
        (2, 2, 2, 1.0, 1.0, 1.0, 0.75),
    ),
    (
        "partial overlap",
        [["B-ORG", "I-ORG", "I-ORG", "O"]],
        [["B-ORG", "I-ORG", "O", "O"]],
        (0, 1, 1, 0.0, 0.0, 0.0, 0.75),
    ),
    (
        "precision != recall",
        [["B-PER", "O", "B-LOC", "O", "B-ORG"]],
        [["B-PER", "O", "B-LOC", "O", "O"]],
        (2, 3, 2, 1.0, 2 / 3, 0.8, 0.8),
    ),
]
#: per-type scores of the last example: type -> (P, R, F1)
PER_TYPE = {"PER": (1.0, 1.0, 1.0), "LOC": (1.0, 1.0, 1.0), "ORG": (0.0, 0.0, 0.0)}


def span_scorer(span_fn: Callable[[Sequence[str]], list[tuple]]):
    """A scorer like ``conlleval`` but with chunks from ``span_fn(tags) -> [(type, start, end)]``:
    for comparing a chunking rule against conlleval's on the worked examples (no per-type scores)."""

    def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> NERScores:
        g = {(i, *c) for i, s in enumerate(gold) for c in span_fn(s)}
        p = {(i, *c) for i, s in enumerate(pred) for c in span_fn(s)}
        n, ok = sum(map(len, gold)), sum(a == b for gs, ps in zip(gold, pred) for a, b in zip(gs, ps))
        hit = len(g & p)
        pr, rc = (hit / len(p) if p else 0.0), (hit / len(g) if g else 0.0)
        f = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
        return NERScores(TypeScore(pr, rc, f, len(g), len(p), hit), {}, n, ok / n if n else 0.0)

    return score
