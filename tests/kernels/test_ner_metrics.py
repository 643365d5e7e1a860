"""kernels.text.ner_metrics: the conlleval port against span sets, boundary cases and errors."""

import random

import pytest

from kernels.text.ner_metrics import chunks, conlleval, split_tag


def test_split_tag_at_the_first_hyphen():
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("O") == ("O", "")
    assert split_tag("I-B-X") == ("I", "B-X")  # conlleval: /^([^-]*)-(.*)$/


def test_chunks_follow_conlleval_rules():
    assert chunks(["B-PER", "I-PER", "O", "I-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 3, 4)]
    assert chunks(["B-PER", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1)]
    assert chunks(["B-PER", "B-PER"]) == [("PER", 0, 0), ("PER", 1, 1)]
    assert chunks(["I-ORG"]) == [("ORG", 0, 0)]
    assert chunks(["O", "O"]) == []
    # IOBES-style prefixes are read as conlleval reads them
    assert chunks(["B-X", "E-X", "S-Y"]) == [("X", 0, 1), ("Y", 2, 2)]


@pytest.mark.parametrize("seed", range(3))
def test_streaming_count_equals_span_set_comparison(seed):
    """conlleval's one-pass counting agrees with comparing the sets of (sentence, type, start, end)."""
    rng = random.Random(seed)
    tags = ["O", "O", "B-A", "I-A", "B-B", "I-B"]
    for _ in range(3000):
        gold = [[rng.choice(tags) for _ in range(rng.randint(1, 7))] for _ in range(rng.randint(1, 4))]
        pred = [[rng.choice(tags) for _ in s] for s in gold]
        s = conlleval(gold, pred)
        g = {(i, *c) for i, x in enumerate(gold) for c in chunks(x)}
        p = {(i, *c) for i, x in enumerate(pred) for c in chunks(x)}
        assert (s.overall.correct, s.overall.gold, s.overall.guessed) == (len(g & p), len(g), len(p))
        for t, v in s.per_type.items():
            gt, pt = {c for c in g if c[1] == t}, {c for c in p if c[1] == t}
            assert (v.correct, v.gold, v.guessed) == (len(gt & pt), len(gt), len(pt))


def test_scores_and_accuracy_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-MISC"]]
    s = conlleval(gold, pred)
    # gold: PER(0-1), LOC(3), ORG; pred: PER(0-1), ORG(3), ORG, MISC -> correct PER and ORG
    assert (s.overall.correct, s.overall.gold, s.overall.guessed) == (2, 3, 4)
    assert s.precision == 0.5 and s.recall == 2 / 3 and abs(s.f1 - 4 / 7) < 1e-12
    assert s.tokens == 6 and s.accuracy == 4 / 6
    assert s.per_type["LOC"].recall == 0.0 and s.per_type["MISC"].precision == 0.0
    assert s.per_type["ORG"].precision == 0.5 and s.per_type["ORG"].recall == 1.0


def test_no_entities_scores_zero_without_dividing_by_zero():
    s = conlleval([["O", "O"]], [["O", "O"]])
    assert (s.precision, s.recall, s.f1, s.accuracy) == (0.0, 0.0, 0.0, 1.0)


def test_mismatched_input_raises():
    with pytest.raises(ValueError, match="sentence 0"):
        conlleval([["O", "B-PER"]], [["O"]])
    with pytest.raises(ValueError, match="gold sentences"):
        conlleval([["O"]], [])
