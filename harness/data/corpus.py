"""The text corpus of the language-model tasks, and random training windows over it.

One loader for every task that trains on running text (5.01 char_rnn, 5.06 next_word,
6.06 decoder_generation, 6.09 mlm): ``corpus/*.txt`` under ``--data-dir`` /
``$DRILLS_DATA_DIR`` when present (and asked for), else the Python standard library's
docstrings (:func:`harness.data.text.stdlib_corpus`: real human-written text, offline).
"""

from __future__ import annotations

import torch

from harness.data.sources import resolve
from harness.data.text import WordTokenizer, read_text, stdlib_corpus


def load_corpus(real: bool = True) -> tuple[str, str]:
    """(text, description). ``real=False`` always gives the embedded stdlib corpus (checks
    stay reproducible whatever ``--data-dir`` holds); its SHA-256 prefix is in the description."""
    source = resolve("corpus")
    if real and source.kind == "files" and source.path is not None:
        files = sorted(source.path.glob("*.txt"))
        return "\n".join(read_text(f) for f in files), f"{len(files)} real text files at {source.path}"
    c = stdlib_corpus()
    return c.text, f"{c.description}; sha256 {c.sha256[:16]}"


def random_windows(ids: torch.Tensor, n: int, length: int, g: torch.Generator) -> torch.Tensor:
    """``n`` windows of ``length + 1`` consecutive ids at random offsets: int64 (n, length + 1);
    ``w[:, :-1]`` are the inputs and ``w[:, 1:]`` the next-token targets.

    Raises:
        ValueError: ``ids`` shorter than ``length + 2``.
    """
    if len(ids) < length + 2:
        raise ValueError(f"random_windows: {len(ids)} ids cannot hold a window of {length + 1}")
    start = torch.randint(0, len(ids) - length - 1, (n,), generator=g)
    return ids[start[:, None] + torch.arange(length + 1)]  # (n, length + 1)


def split_windows(ids: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping (inputs, targets), each (n, length): targets are inputs shifted by one."""
    n = (len(ids) - 1) // length
    return ids[: n * length].view(n, length), ids[1 : n * length + 1].view(n, length)


def unigram_nll(train: torch.Tensor, held_out: torch.Tensor, vocab: int) -> float:
    """Mean NLL (nats) of ``held_out`` ids under add-one-smoothed training unigram frequencies:
    the loss of a model that knows which tokens are common and nothing about context."""
    counts = torch.bincount(train, minlength=vocab).double() + 1
    return float(-(counts / counts.sum()).log()[held_out].mean())


def word_corpus(vocab_words: int, specials: tuple[str, ...] = (), real: bool = True):
    """(tokenizer, train ids, held-out ids, description) of the corpus split 90/10 by words: the
    ``vocab_words`` most frequent training words, after ``<pad>``, ``<unk>`` and ``specials``."""
    text, desc = load_corpus(real)
    cut = int(0.9 * len(text))
    base = WordTokenizer.fit(text[:cut], max_size=vocab_words)
    tok = WordTokenizer([*specials, *base.itos[2:]])
    return tok, tok.encode(text[:cut]), tok.encode(text[cut:]), desc
