"""Seeded synthetic stand-ins, used only where no real data can be had offline.

Source: generators written for this harness (no external data). Each returns a
``harness.data.sets`` container with ``synthetic=True`` and a one-line ``description``
naming the generator and seed, so reports show that the numbers come from a toy task.

The *class definitions* (colours, word lists, the toy language) are fixed constants and do
not depend on ``seed``; ``seed`` only draws the samples. So a train set from seed 0 and a
test set from seed 1 describe the same task. Same seed -> same data on every machine
(``torch.Generator`` and ``random.Random`` with a fixed seed are stable across platforms).
"""

from __future__ import annotations

import math
import random

import torch

from .sets import ImageSet, ParallelSet, TaggedSentences, TextClassificationSet

#: name -> one-line description of each generator (shown by sources.resolve).
GENERATORS = {
    "cifar": "class-dependent two-colour sinusoidal stripes (orientation, frequency) with "
    "per-image phase, jitter and noise, 3x32x32",
    "reviews": "sentiment reviews from positive/negative word lists in templates, with "
    "negations and 20% opposite-polarity sentences",
    "ner": "NER sentences from templates filled with gazetteer names, BIO tags (PER, ORG, LOC, MISC)",
    "translation": "a toy language: fixed word-for-word dictionary, adjectives after the "
    "noun and the verb moved to the end (SVO -> SOV)",
    "headlines": "headlines from per-topic keyword lists with shared filler words and 10% off-topic keywords",
}


def _describe(name: str, seed: int, extra: str = "") -> str:
    return f"synthetic: {GENERATORS[name]}{extra} (harness.data.synthetic, seed={seed})"


def _balanced_labels(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    return (torch.arange(n) % k)[torch.randperm(n, generator=g)]


def synthetic_cifar(n: int, num_classes: int = 10, seed: int = 0, image_size: int = 32) -> ImageSet:
    """CIFAR-shaped images whose class sets two colours and a stripe pattern.

    Class k has fixed colours a_k, b_k in [0, 1]^3, orientation theta_k and frequency f_k
    (cycles per image), drawn once from a generator seeded with 1234 + num_classes. Pixel
    (c, y, x) of an image of class k is
    ``a_k[c] + (b_k[c] - a_k[c]) * (1 + sin(2 pi f (x cos t + y sin t) + phi)) / 2 + noise``
    with per-image phase phi ~ U[0, 2 pi), t = theta_k +- 0.15 rad, f = f_k * (1 +- 0.1),
    colour jitter +-0.08 and Gaussian noise (std 0.08), clamped and scaled to 0..255.

    Args:
        n: number of images; num_classes: 2..100 (balanced labels, shuffled).
    Returns ImageSet(synthetic=True): uint8 (n, 3, S, S), int64 (n,).
    """
    if not 2 <= num_classes <= 100:
        raise ValueError(f"synthetic_cifar: num_classes must be in 2..100, got {num_classes}")
    proto = torch.Generator().manual_seed(1234 + num_classes)
    col_a = torch.rand(num_classes, 3, generator=proto)
    col_b = torch.rand(num_classes, 3, generator=proto)
    theta = torch.rand(num_classes, generator=proto) * math.pi
    freq = 1.5 + 3.5 * torch.rand(num_classes, generator=proto)

    g = torch.Generator().manual_seed(seed)
    labels = _balanced_labels(n, num_classes, g)
    t = theta[labels] + (torch.rand(n, generator=g) - 0.5) * 0.3  # (n,)
    f = freq[labels] * (1 + (torch.rand(n, generator=g) - 0.5) * 0.2)  # (n,)
    phi = torch.rand(n, generator=g) * 2 * math.pi  # (n,)
    ys, xs = torch.meshgrid(
        torch.arange(image_size) / image_size, torch.arange(image_size) / image_size, indexing="ij"
    )  # (S, S)
    proj = xs[None] * torch.cos(t)[:, None, None] + ys[None] * torch.sin(t)[:, None, None]
    mix = (1 + torch.sin(2 * math.pi * f[:, None, None] * proj + phi[:, None, None])) / 2
    a = col_a[labels] + (torch.rand(n, 3, generator=g) - 0.5) * 0.16  # (n, 3)
    b = col_b[labels] + (torch.rand(n, 3, generator=g) - 0.5) * 0.16  # (n, 3)
    img = a[:, :, None, None] + (b - a)[:, :, None, None] * mix[:, None]  # (n, 3, S, S)
    img = img + 0.08 * torch.randn(img.shape, generator=g)
    images = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return ImageSet(
        images,
        labels,
        tuple(f"class_{k}" for k in range(num_classes)),
        _describe("cifar", seed, f", {num_classes} classes"),
        synthetic=True,
    )


_POS = (
    "good great excellent wonderful superb brilliant delightful moving charming "
    "memorable clever beautiful enjoyable fun touching stunning gripping witty"
).split()
_NEG = (
    "bad awful terrible boring dull poor weak tedious clumsy forgettable silly ugly "
    "painful bland messy lifeless predictable annoying"
).split()
_NOUNS = (
    "movie film plot story acting cast script ending soundtrack director "
    "dialogue pacing cinematography performance characters scenes"
).split()
_REVIEW_TEMPLATES = (
    "the {noun} was {adj} .",
    "i thought the {noun} was {adj} .",
    "a {adj} {noun} .",
    "honestly the {noun} felt {adj} .",
    "what a {adj} {noun} !",
    "the {noun} is {adj} overall .",
)
_NEGATED_TEMPLATES = ("the {noun} was not {adj} .", "i would not call the {noun} {adj} .")


def synthetic_reviews(n: int, seed: int = 0) -> TextClassificationSet:
    """Movie-review-like texts labelled neg (0) / pos (1), balanced.

    Each review has 2-5 sentences; each sentence carries the review's polarity with
    probability 0.8 (else the opposite), and 15% of sentences express it through a
    negated adjective of the other list ("not boring"), so a bag of words is not enough
    for a perfect score.
    Returns TextClassificationSet(synthetic=True), classes ("neg", "pos").
    """
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    labels = _balanced_labels(n, 2, g)
    texts = []
    for y in labels.tolist():
        sents = []
        for _ in range(rng.randint(2, 5)):
            positive = (y == 1) if rng.random() < 0.8 else (y == 0)
            noun = rng.choice(_NOUNS)
            if rng.random() < 0.15:  # "not <opposite>" keeps the intended polarity
                adj = rng.choice(_NEG if positive else _POS)
                sents.append(rng.choice(_NEGATED_TEMPLATES).format(noun=noun, adj=adj))
            else:
                adj = rng.choice(_POS if positive else _NEG)
                sents.append(rng.choice(_REVIEW_TEMPLATES).format(noun=noun, adj=adj))
        texts.append(" ".join(sents))
    return TextClassificationSet(texts, labels, ("neg", "pos"), _describe("reviews", seed), synthetic=True)


_GAZETTEER = {
    "PER": (
        "John Smith",
        "Maria Garcia",
        "Wei Chen",
        "Anna Kowalski",
        "Ahmed Hassan",
        "Laura Rossi",
        "Peter Novak",
        "Yuki Tanaka",
        "Olga Petrova",
        "Samuel Okafor",
        "Clinton",
        "Merkel",
    ),
    "ORG": (
        "Acme Corp",
        "United Nations",
        "Reuters",
        "Bundesbank",
        "European Commission",
        "Toyota",
        "Red Cross",
        "World Bank",
        "Ajax Amsterdam",
        "Nasdaq",
    ),
    "LOC": (
        "Paris",
        "New York",
        "Berlin",
        "Tokyo",
        "Nairobi",
        "Buenos Aires",
        "Lake Geneva",
        "Moscow",
        "Sydney",
        "South Africa",
    ),
    "MISC": ("German", "Olympic", "French", "Euro 2004", "Japanese", "World Cup", "Dutch", "Nobel Prize"),
}
_NER_TEMPLATES = (
    "{PER} visited {LOC} on Monday .",
    "{PER} works for {ORG} in {LOC} .",
    "{ORG} said on Tuesday that {PER} will lead the {MISC} team .",
    "Shares of {ORG} fell in {LOC} after the report .",
    "The {MISC} minister met {PER} in {LOC} .",
    "{PER} won the {MISC} title ahead of {PER} .",
    "{ORG} opened an office in {LOC} last year .",
    "Talks between {ORG} and {ORG} ended without a deal .",
)


def synthetic_ner(n: int, seed: int = 0) -> TaggedSentences:
    """Sentences from templates with gazetteer entities and BIO tags.

    Entity types PER, ORG, LOC, MISC; multi-word names tag ``B-X I-X ...``; every other
    token is ``O``. Returns TaggedSentences(synthetic=True).
    """
    rng = random.Random(seed)
    sentences, tags = [], []
    for _ in range(n):
        toks, tgs = [], []
        for piece in rng.choice(_NER_TEMPLATES).split():
            if piece.startswith("{") and piece.endswith("}"):
                kind = piece[1:-1]
                words = rng.choice(_GAZETTEER[kind]).split()
                toks.extend(words)
                tgs.extend(["B-" + kind] + ["I-" + kind] * (len(words) - 1))
            else:
                toks.append(piece)
                tgs.append("O")
        sentences.append(toks)
        tags.append(tgs)
    names = ("O",) + tuple(sorted(f"{p}-{k}" for k in _GAZETTEER for p in "BI"))
    return TaggedSentences(sentences, tags, names, _describe("ner", seed), synthetic=True)


# The toy language: word-for-word dictionary (English-like source -> invented target).
TOY_DETERMINERS = {"the": "le", "a": "un", "this": "ce", "my": "mon"}
TOY_ADJECTIVES = {
    "big": "grando",
    "small": "peto",
    "red": "roso",
    "old": "vieko",
    "young": "juno",
    "happy": "felo",
    "quiet": "kalmo",
    "fast": "rapo",
}
TOY_NOUNS = {
    "cat": "gato",
    "dog": "hundo",
    "bird": "avo",
    "house": "domo",
    "tree": "arbo",
    "child": "info",
    "book": "libro",
    "river": "rivo",
    "car": "auto",
    "teacher": "docento",
}
TOY_VERBS = {
    "sees": "vidas",
    "likes": "amas",
    "finds": "trovas",
    "follows": "sekvas",
    "carries": "portas",
    "hears": "audas",
}


def toy_translate(source: str) -> str:
    """The exact rule behind :func:`synthetic_translation`, for checking a decoder.

    ``det adj* noun verb det adj* noun`` -> ``det' noun' adj'* det' noun' adj'* verb'``:
    each word through the fixed dictionaries, adjectives after their noun, verb last.
    Raises ValueError for a sentence outside the toy grammar.
    """
    words = source.split()
    out_np: list[list[str]] = []
    verb = None
    i = 0
    while i < len(words):
        if words[i] not in TOY_DETERMINERS:
            raise ValueError(f"toy_translate: expected a determiner at word {i} of {source!r}")
        det = TOY_DETERMINERS[words[i]]
        i += 1
        adjs = []
        while i < len(words) and words[i] in TOY_ADJECTIVES:
            adjs.append(TOY_ADJECTIVES[words[i]])
            i += 1
        if i >= len(words) or words[i] not in TOY_NOUNS:
            raise ValueError(f"toy_translate: expected a noun at word {i} of {source!r}")
        out_np.append([det, TOY_NOUNS[words[i]], *adjs])
        i += 1
        if verb is None and len(out_np) == 1:
            if i >= len(words) or words[i] not in TOY_VERBS:
                raise ValueError(f"toy_translate: expected a verb at word {i} of {source!r}")
            verb = TOY_VERBS[words[i]]
            i += 1
    if len(out_np) != 2 or verb is None:
        raise ValueError(f"toy_translate: {source!r} is not 'NP verb NP'")
    return " ".join(out_np[0] + out_np[1] + [verb])


def synthetic_translation(n: int, seed: int = 0, max_adjectives: int = 2) -> ParallelSet:
    """Sentence pairs of the toy language (see :func:`toy_translate`).

    Sources are ``det adj{0..max_adjectives} noun verb det adj{0..max_adjectives} noun``
    (5 to 5 + 2 * max_adjectives words); targets are their exact translations, so a
    perfect model exists and greedy decoding can be checked word for word.
    Returns ParallelSet(synthetic=True).
    """
    rng = random.Random(seed)
    dets, adjs = sorted(TOY_DETERMINERS), sorted(TOY_ADJECTIVES)
    nouns, verbs = sorted(TOY_NOUNS), sorted(TOY_VERBS)

    def np_() -> list[str]:
        k = rng.randint(0, max_adjectives)
        return [rng.choice(dets), *rng.sample(adjs, k), rng.choice(nouns)]

    sources = [" ".join(np_() + [rng.choice(verbs)] + np_()) for _ in range(n)]
    return ParallelSet(sources, [toy_translate(s) for s in sources], _describe("translation", seed), synthetic=True)


_TOPICS = {
    "world": "president minister election border troops talks embassy summit refugees "
    "ceasefire parliament treaty protest sanctions diplomat",
    "sports": "match coach season striker goal league champions tournament injury final "
    "victory team referee medal stadium",
    "business": "shares profit market bank earnings investors merger stocks quarter "
    "prices trade economy revenue startup tariffs",
    "science": "researchers study space telescope species climate genome physics "
    "vaccine robot quantum fossil satellite data experiment",
    "health": "hospital patients doctors disease diet cancer surgery virus nurses "
    "clinic therapy sleep obesity drug trial",
    "entertainment": "film actor album concert festival premiere singer series award "
    "director box office band streaming celebrity",
}
_FILLER = "new says after amid over as report could first why how more".split()


def synthetic_headlines(n: int, num_topics: int = 4, seed: int = 0) -> TextClassificationSet:
    """News-like headlines labelled by topic (world, sports, business, science, health,
    entertainment; the first ``num_topics`` of them, 2..6), balanced.

    A headline is 5-9 words: 2-4 keywords of its topic (each replaced by another topic's
    keyword with probability 0.1) shuffled with filler words shared by all topics.
    Returns TextClassificationSet(synthetic=True).
    """
    if not 2 <= num_topics <= len(_TOPICS):
        raise ValueError(f"synthetic_headlines: num_topics must be in 2..{len(_TOPICS)}, got {num_topics}")
    topics = list(_TOPICS)[:num_topics]
    words = {t: _TOPICS[t].split() for t in topics}
    rng = random.Random(seed)
    labels = _balanced_labels(n, num_topics, torch.Generator().manual_seed(seed))
    texts = []
    for y in labels.tolist():
        kws = []
        for _ in range(rng.randint(2, 4)):
            src = topics[y] if rng.random() >= 0.1 else rng.choice(topics)
            kws.append(rng.choice(words[src]))
        ws = kws + rng.sample(_FILLER, rng.randint(3, 5))
        rng.shuffle(ws)
        texts.append(" ".join(ws))
    return TextClassificationSet(
        texts, labels, tuple(topics), _describe("headlines", seed, f", {num_topics} topics"), synthetic=True
    )
