"""Wrong chunking rules and a lossy reader, the mutants of 5.09 ``rnn.ner`` (beside
:mod:`kernels.text.ner_metrics`).

Each ``*_spans(tags) -> [(type, start, end)]`` is a chunking rule a scorer might use instead of
conlleval's; ``kernels.text.ner_examples.span_scorer`` turns one into a scorer, and the task's
worked examples must reject it. ``reader_drops_last`` breaks the CoNLL round trip.
"""

from __future__ import annotations

from harness.data import read_conll


def token_spans(tags):
    """Counts tagged tokens as if each were an entity (token-level P/R/F1)."""
    return [(t[2:], i, i) for i, t in enumerate(tags) if t != "O"]


def strict_spans(tags):
    """Strict IOB2: an I- without a B- (or of another type) belongs to no entity."""
    out, start, kind = [], None, None
    for i, t in enumerate([*tags, "O"]):
        if start is not None and not (t.startswith("I-") and t[2:] == kind):
            out, start = [*out, (kind, start, i - 1)], None
        if t.startswith("B-"):
            start, kind = i, t[2:]
    return out


def merged_spans(tags):
    """Merges chunks across a type change (B-PER I-LOC as one entity)."""
    out, start, kind = [], None, None
    for i, t in enumerate([*tags, "O"]):
        if start is not None and (t == "O" or t.startswith("B-")):
            out, start = [*out, (kind, start, i - 1)], None
        if t != "O" and start is None:
            start, kind = i, t[2:]
    return out


def reader_drops_last(path):
    """``harness.data.read_conll`` that loses the file's last sentence."""
    d = read_conll(path)
    return type(d)(d.sentences[:-1], d.tags[:-1], d.tag_names, d.description)
