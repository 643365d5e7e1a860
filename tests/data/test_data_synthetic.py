"""Synthetic generators: seeded, labelled synthetic, and learnable in the way documented."""

import pytest
import torch

from harness.data import (
    GENERATORS,
    synthetic_cifar,
    synthetic_headlines,
    synthetic_ner,
    synthetic_reviews,
    synthetic_translation,
    toy_translate,
)
from harness.data import synthetic as synthetic_mod

GEN = {
    "cifar": lambda seed: synthetic_cifar(60, 10, seed=seed),
    "reviews": lambda seed: synthetic_reviews(40, seed=seed),
    "ner": lambda seed: synthetic_ner(30, seed=seed),
    "translation": lambda seed: synthetic_translation(30, seed=seed),
    "headlines": lambda seed: synthetic_headlines(40, seed=seed),
}


def _fields(obj):
    return [v.tolist() if isinstance(v, torch.Tensor) else v for v in vars(obj).values()]


@pytest.mark.parametrize("name", sorted(GEN))
def test_seeded_and_labelled_synthetic(name):
    a, b, c = GEN[name](0), GEN[name](0), GEN[name](1)
    assert _fields(a) == _fields(b)
    assert _fields(a) != _fields(c)
    assert a.synthetic is True
    assert a.description.startswith("synthetic: " + GENERATORS[name])
    assert "seed=0" in a.description and "\n" not in a.description


def test_cifar_shapes_balance_and_class_signal():
    s = synthetic_cifar(400, 10, seed=0)
    assert s.images.shape == (400, 3, 32, 32) and s.images.dtype == torch.uint8
    assert torch.bincount(s.labels).tolist() == [40] * 10
    # classes are defined independently of the seed: per-class mean colours of two
    # seeds agree, and a nearest-mean classifier on colour alone beats chance by far
    t = synthetic_cifar(400, 10, seed=1)
    mean = lambda d: torch.stack(
        [
            d.images[d.labels == k].float().mean((0, 2, 3))  # noqa: E731
            for k in range(10)
        ]
    )
    ma, mb = mean(s), mean(t)
    assert (ma - mb).abs().max() < 20
    feats = t.images.float().mean((2, 3))  # (N, 3)
    pred = torch.cdist(feats, ma).argmin(1)
    assert (pred == t.labels).float().mean() > 0.5
    assert synthetic_cifar(200, 100).labels.max() == 99


def test_reviews_words_carry_label():
    s = synthetic_reviews(400, seed=0)
    assert s.classes == ("neg", "pos") and torch.bincount(s.labels).tolist() == [200, 200]

    def polarity(text):  # +1 per positive word, -1 per negative, flipped after "not"
        score, negated = 0, False
        for w in text.split():
            sign = 1 if w in synthetic_mod._POS else -1 if w in synthetic_mod._NEG else 0
            score += -sign if negated else sign
            negated = (negated or w == "not") and w not in (".", "!")
        return score

    pred = torch.tensor([int(polarity(t) > 0) for t in s.texts])
    acc = (pred == s.labels).float().mean().item()
    assert 0.8 < acc < 1.0  # mostly readable from words and negation, but noisy
    naive = torch.tensor(
        [
            int(sum(w in synthetic_mod._POS for w in t.split()) > sum(w in synthetic_mod._NEG for w in t.split()))
            for t in s.texts
        ]
    )
    assert (naive == s.labels).float().mean().item() < acc  # negation matters


def test_ner_bio_tags_align():
    s = synthetic_ner(50, seed=3)
    for toks, tags in zip(s.sentences, s.tags):
        assert len(toks) == len(tags)
        for prev, cur in zip(["O"] + tags, tags):
            if cur.startswith("I-"):
                assert prev[2:] == cur[2:]  # I-X only continues an X entity
    assert set(t for ts in s.tags for t in ts) <= set(s.tag_names)


def test_translation_rule():
    assert toy_translate("the big red dog sees a cat") == "le hundo grando roso un gato vidas"
    s = synthetic_translation(100, seed=0)
    assert all(toy_translate(a) == b for a, b in zip(s.sources, s.targets))
    assert all(len(a.split()) == len(b.split()) for a, b in zip(*s))  # word for word, reordered
    assert all(5 <= len(a.split()) <= 9 for a in s.sources)
    with pytest.raises(ValueError, match="determiner"):
        toy_translate("dog sees the cat")


def test_headlines_topics():
    s = synthetic_headlines(60, num_topics=3, seed=0)
    assert s.classes == ("world", "sports", "business")
    assert torch.bincount(s.labels).tolist() == [20, 20, 20]
    with pytest.raises(ValueError):
        synthetic_headlines(10, num_topics=7)
