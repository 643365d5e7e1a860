"""WordPiece, BERT's tokenizer, trained offline on the project's corpus with Hugging Face ``tokenizers``.

BERT (Devlin et al. 2019, Sec. 3; google-research/bert ``tokenization.py``) lower-cases, splits
on whitespace and punctuation, then cuts each word greedily into the longest pieces found in
the vocabulary, continuation pieces prefixed ``##`` ("unaffable" -> ``un ##aff ##able``); a word
with no cut is ``[UNK]``. BERT's own vocabulary (30,522 pieces) downloads with its weights, so
the default here is a vocabulary *trained* on the text at hand (``WordPieceTrainer``, offline, a
second on the stdlib corpus); a BERT ``vocab.txt`` (one piece per line, as the released
checkpoints ship it) under ``--data-dir``/``wordpiece/`` is used instead when present.

Special tokens take ids 0..4 in this order: ``[PAD] [UNK] [CLS] [SEP] [MASK]``; ordinary pieces
start at :data:`FIRST_ORDINARY` (what the masking rule samples random replacements from).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .corpus import load_corpus
from .errors import DataFormatError
from .sources import data_root

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
FIRST_ORDINARY = len(SPECIALS)


@dataclass(frozen=True)
class WordPiece:
    """A WordPiece tokenizer: ``encode`` text -> int64 (T,) ids, ``decode`` ids -> text.

    Fields:
        tokenizer: the ``tokenizers.Tokenizer`` (BERT normaliser and pre-tokeniser, WordPiece model).
        source: where the vocabulary came from, for reports.
    """

    tokenizer: object
    source: str

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())  # type: ignore[attr-defined]

    def id(self, token: str) -> int:
        """The id of ``token``; KeyError names it when the vocabulary lacks it."""
        i = self.tokenizer.token_to_id(token)  # type: ignore[attr-defined]
        if i is None:
            raise KeyError(f"{token!r} is not in the WordPiece vocabulary ({self.source})")
        return int(i)

    def pieces(self, text: str) -> list[str]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).tokens)  # type: ignore[attr-defined]

    def encode(self, text: str) -> torch.Tensor:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids  # type: ignore[attr-defined]
        return torch.tensor(ids, dtype=torch.int64)  # (T,)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return str(self.tokenizer.decode(ids))  # type: ignore[attr-defined]


def _bert_pipeline(model) -> object:
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers

    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def train_wordpiece(text: str, vocab_size: int, *, min_frequency: int = 2) -> WordPiece:
    """Train a WordPiece vocabulary of at most ``vocab_size`` pieces (specials included) on ``text``.

    Raises ValueError when ``vocab_size`` cannot hold the specials and the single characters.
    """
    from tokenizers import models, trainers

    if vocab_size <= len(SPECIALS):
        raise ValueError(f"vocab_size {vocab_size} leaves no room beyond the {len(SPECIALS)} special tokens")
    tok = _bert_pipeline(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIALS), continuing_subword_prefix="##",
                                        show_progress=False)  # fmt: skip
    tok.train_from_iterator(text.splitlines(), trainer)  # type: ignore[attr-defined]
    return WordPiece(tok, f"WordPiece trained here ({vocab_size:,} pieces asked)")


def load_wordpiece(vocab_txt: str | Path) -> WordPiece:
    """A BERT ``vocab.txt`` (one piece per line, ``##`` continuations); it must hold the five
    specials (DataFormatError names the first one missing)."""
    from tokenizers import models

    path = Path(vocab_txt)
    pieces = path.read_text(encoding="utf-8").splitlines()
    missing = [s for s in SPECIALS if s not in pieces]
    if missing:
        raise DataFormatError(path, f"a BERT vocab.txt with {', '.join(SPECIALS)}", f"no {missing[0]}",
                              "use the vocab.txt shipped with a BERT checkpoint")  # fmt: skip
    tok = _bert_pipeline(models.WordPiece({p: i for i, p in enumerate(pieces)}, unk_token="[UNK]"))
    return WordPiece(tok, f"BERT vocab.txt at {path} ({len(pieces):,} pieces)")


def wordpiece_corpus(vocab_size: int, real: bool = True):
    """(tokenizer, train ids, held-out ids, description) of the LM corpus split 90/10 by characters,
    tokenised with ``wordpiece/vocab.txt`` under the data folder if present, else a WordPiece
    vocabulary trained on the training 90 %. Ids are int64 (T,)."""
    text, desc = load_corpus(real)
    cut = int(0.9 * len(text))
    root = data_root()
    vocab = root / "wordpiece" / "vocab.txt" if root is not None else None
    tok = (
        load_wordpiece(vocab)
        if real and vocab is not None and vocab.is_file()
        else train_wordpiece(text[:cut], vocab_size)
    )
    if tok.id("[PAD]") != 0 or tok.id("[MASK]") != 4:
        raise DataFormatError(tok.source, "[PAD] at id 0 and [MASK] at id 4", f"{tok.id('[PAD]')}, "
                              f"{tok.id('[MASK]')}", "reorder the vocabulary's first lines")  # fmt: skip
    return tok, tok.encode(text[:cut]), tok.encode(text[cut:]), f"{desc}; {tok.source}"
