"""Entity-level precision, recall and F1 over chunk tags, computed as CoNLL's ``conlleval`` does.

Source: ``conlleval`` (Perl, E. F. Tjong Kim Sang, version 2004-01-26), the scorer of the
CoNLL-2000 chunking and CoNLL-2002/2003 NER shared tasks; this is a line-by-line port of
its counting loop and of its ``startOfChunk`` / ``endOfChunk`` rules (which also accept
IOBES-style ``E``/``S`` prefixes). A tag is ``PREFIX-TYPE`` split at the first hyphen
(``B-PER``, ``I-LOC``), or ``O``.

How conlleval reads tags, the boundary cases included:

* A chunk starts at ``B-X``; at ``I-X`` after ``O`` (an I- without a B- opens a chunk); and
  at any non-``O`` tag whose type differs from the previous tag's (``B-PER I-LOC`` is two
  chunks, PER then LOC).
* A chunk ends before ``B``/``O`` and before a tag of another type; so ``B-PER B-PER``
  is two adjacent one-token chunks.
* Sentence breaks end every chunk (the script turns a blank line into an ``O`` token that
  is not counted): a chunk never spans two sentences.
* A guessed chunk is correct when a gold chunk starts on the same token with the same
  type and both end on the same token.

precision = correct / guessed chunks, recall = correct / gold chunks,
F1 = 2PR / (P + R) (0 when P + R = 0); conlleval prints them in percent, they are
fractions in [0, 1] here. ``accuracy`` is the token-level share of exactly equal tags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


def split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of a tag, split at the first hyphen as conlleval does: ``"B-PER"`` ->
    ``("B", "PER")``, ``"O"`` -> ``("O", "")``, ``"I-A-B"`` -> ``("I", "A-B")``."""
    head, sep, rest = tag.partition("-")
    return (head, rest) if sep else (tag, "")


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Did a chunk end between the previous token and this one? (conlleval ``endOfChunk``)"""
    end = (prev_tag, tag) in {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"), ("E", "O")}
    if prev_tag not in ("O", ".") and prev_type != type_:
        end = True
    return end or prev_tag in ("]", "[")


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Did a chunk start on this token? (conlleval ``startOfChunk``)"""
    start = (prev_tag, tag) in {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"), ("E", "I"), ("O", "E")}
    if tag not in ("O", ".") and prev_type != type_:
        start = True
    return start or tag in ("[", "]")


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks of one sentence as (type, first token, last token), by conlleval's rules."""
    out: list[tuple[str, int, int]] = []
    prev, prev_type, open_at = "O", "", None
    for i, t in enumerate([*tags, "O"]):  # the trailing O is the sentence break
        tag, type_ = split_tag(t)
        if open_at is not None and _end_of_chunk(prev, tag, prev_type, type_):
            out.append((prev_type, open_at, i - 1))
            open_at = None
        if i < len(tags) and _start_of_chunk(prev, tag, prev_type, type_):
            open_at = i
        prev, prev_type = tag, type_
    return out


@dataclasses.dataclass(frozen=True)
class TypeScore:
    """Scores of one entity type (or all types together); rates are fractions in [0, 1]."""

    precision: float
    recall: float
    f1: float
    gold: int
    """chunks of this type in the gold tags (conlleval's foundCorrect)"""
    guessed: int
    """chunks of this type in the predicted tags (foundGuessed)"""
    correct: int
    """guessed chunks that match a gold chunk exactly (correctChunk)"""


def _score(correct: int, gold: int, guessed: int) -> TypeScore:
    p = correct / guessed if guessed else 0.0
    r = correct / gold if gold else 0.0
    return TypeScore(p, r, 2 * p * r / (p + r) if p + r else 0.0, gold, guessed, correct)


@dataclasses.dataclass(frozen=True)
class NERScores:
    """What :func:`conlleval` reports: overall and per-type chunk scores, token accuracy."""

    overall: TypeScore
    per_type: dict[str, TypeScore]
    tokens: int
    """tokens scored (sentence breaks not counted)"""
    accuracy: float
    """share of tokens whose predicted tag equals the gold tag, in [0, 1]"""

    @property
    def precision(self) -> float:
        return self.overall.precision

    @property
    def recall(self) -> float:
        return self.overall.recall

    @property
    def f1(self) -> float:
        return self.overall.f1


def conlleval(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> NERScores:
    """Score predicted tag sequences against gold ones, sentence by sentence, as conlleval.

    Args:
        gold, pred: one list of tags per sentence; ``pred[i]`` must be as long as ``gold[i]``.
    Returns :class:`NERScores`. Raises ValueError when the sentence counts or a sentence's
    lengths differ (conlleval would silently misalign them).
    """
    if len(gold) != len(pred):
        raise ValueError(f"conlleval: {len(gold)} gold sentences but {len(pred)} predicted")
    n_correct = n_gold = n_guessed = n_tags_ok = n_tokens = 0
    by_type: dict[str, list[int]] = {}  # type -> [correct, gold, guessed]

    def bump(type_: str, k: int) -> None:
        by_type.setdefault(type_, [0, 0, 0])[k] += 1

    in_correct = False
    last_c, last_g, last_ct, last_gt = "O", "O", "", ""
    for s, (gs, ps) in enumerate(zip(gold, pred)):
        if len(gs) != len(ps):
            raise ValueError(f"conlleval: sentence {s} has {len(gs)} gold tags but {len(ps)} predicted")
        # each sentence is followed by a break, read as an uncounted O/O token
        for pos, (gt, pt) in enumerate([*zip(gs, ps), ("O", "O")]):
            boundary = pos == len(gs)
            c, ct = split_tag(gt)
            g, g_t = split_tag(pt)
            end_c = _end_of_chunk(last_c, c, last_ct, ct)
            end_g = _end_of_chunk(last_g, g, last_gt, g_t)
            if in_correct:
                if end_c and end_g and last_gt == last_ct:
                    in_correct = False
                    n_correct += 1
                    bump(last_ct, 0)
                elif end_c != end_g or g_t != ct:
                    in_correct = False
            start_c = _start_of_chunk(last_c, c, last_ct, ct)
            start_g = _start_of_chunk(last_g, g, last_gt, g_t)
            if start_c and start_g and g_t == ct:
                in_correct = True
            if start_c:
                n_gold += 1
                bump(ct, 1)
            if start_g:
                n_guessed += 1
                bump(g_t, 2)
            if not boundary:
                n_tags_ok += c == g and g_t == ct
                n_tokens += 1
            last_c, last_g, last_ct, last_gt = c, g, ct, g_t
    if in_correct:  # cannot happen after the final break, kept as in conlleval
        n_correct += 1
        bump(last_ct, 0)
    per_type = {t: _score(*v) for t, v in sorted(by_type.items())}
    return NERScores(
        _score(n_correct, n_gold, n_guessed), per_type, n_tokens, n_tags_ok / n_tokens if n_tokens else 0.0
    )
