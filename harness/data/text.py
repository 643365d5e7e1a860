"""Plain-text corpora and tokenizers.

* :func:`read_text`: a UTF-8 text file as one string.
* :func:`stdlib_corpus`: the embedded default corpus, real human-written English prose
  (with code examples): the docstrings of a fixed list of Python standard-library
  modules, parsed from their source files with :mod:`ast` (nothing is imported or run).
  Source: the CPython standard library of the running interpreter
  (https://github.com/python/cpython/tree/main/Lib), PSF licence.
* :class:`CharTokenizer`, :class:`WordTokenizer`: vocabularies fitted on training text
  only, with ``<pad>`` (id 0) and ``<unk>`` (id 1) (the convention of torchtext's
  ``build_vocab_from_iterator(specials=...)``).

The labelled-text readers (IMDB, CoNLL, parallel TSV, headlines) are in
:mod:`harness.data.text_sets`, the llm.c token shards in :mod:`harness.data.shards`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import re
import sys
import sysconfig
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from .errors import DataFormatError, DataNotFoundError
from .sets import TextCorpus

PAD = "<pad>"
UNK = "<unk>"

#: Modules whose docstrings make the default corpus, sorted; all pure Python and present
#: from Python 3.10 on. Changing this list changes the corpus: do it only on purpose.
STDLIB_CORPUS_MODULES = tuple(
    sorted(
        """
argparse ast base64 bisect calendar cmd codecs collections configparser contextlib copy
csv dataclasses difflib doctest email.message email.utils enum fileinput fnmatch fractions
ftplib functools getopt gettext glob gzip heapq hmac html.parser http.client
http.cookiejar http.server imaplib inspect ipaddress json.decoder json.encoder locale
logging logging.handlers mailbox numbers operator optparse os pathlib pickle pkgutil
platform poplib pprint queue random re reprlib sched secrets selectors shlex shutil
smtplib socket socketserver ssl statistics string struct subprocess tarfile tempfile
textwrap threading timeit tokenize trace traceback types typing unittest.case
unittest.mock urllib.parse urllib.request uuid warnings weakref xml.dom.minidom
xml.etree.ElementTree zipfile
""".split()
    )
)


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The whole file as a string (universal newlines).

    Raises DataNotFoundError if absent and DataFormatError naming the file and the byte
    offset when it is not valid ``encoding``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataNotFoundError(f"text file {path.name}", [str(path)]) from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataFormatError(
            path,
            f"{encoding} text",
            f"an undecodable byte at offset {e.start}",
            "Pass the file's encoding, e.g. 'latin-1'",
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _module_file(stdlib: Path, module: str) -> Path | None:
    base = stdlib.joinpath(*module.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _docstrings(tree: ast.AST) -> Iterable[str]:
    """Docstrings of the module, classes and functions, in source order."""
    if isinstance(tree, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        doc = ast.get_docstring(tree, clean=True)
        if doc:
            yield doc
    # definitions live only in statement lists (bodies of modules, classes, functions,
    # if/try/with/for); skipping expressions keeps the walk ~10x cheaper
    for field in ("body", "orelse", "finalbody", "handlers"):
        for child in getattr(tree, field, ()):
            if isinstance(child, (ast.stmt, ast.excepthandler)):
                yield from _docstrings(child)


@functools.lru_cache(maxsize=1)
def stdlib_corpus() -> TextCorpus:
    """The embedded default corpus: standard-library docstrings (real human-written text).

    Built by parsing each module of :data:`STDLIB_CORPUS_MODULES`, in that sorted order,
    with :mod:`ast` and joining every module, class and function docstring (in source
    order, cleaned with ``inspect.cleandoc`` rules) with blank lines. Deterministic: the
    same text on every machine with the same Python minor version (docstrings are part of
    the source; a patch release very rarely edits one, and the returned ``sha256`` tells
    for sure). About 720,000 characters on Python 3.11; takes ~1 s, cached per process.

    Returns TextCorpus(text, description, sha256). Raises DataNotFoundError when the
    interpreter ships no standard-library sources (a .pyc-only install).
    """
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    used: list[str] = []
    missing: list[str] = []
    for module in STDLIB_CORPUS_MODULES:
        f = _module_file(stdlib, module)
        if f is None:
            missing.append(module)
            continue
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        parts.extend(_docstrings(tree))
        used.append(module)
    if not used:
        raise DataNotFoundError(
            "Python standard-library sources",
            [str(stdlib / "argparse.py")],
            "Install the interpreter's .py sources or use read_text()",
        )
    text = "\n\n".join(parts) + "\n"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    note = f"; {len(missing)} listed modules absent: {missing}" if missing else ""
    return TextCorpus(
        text,
        f"docstrings of {len(used)} Python {version} standard-library modules (fixed sorted "
        f"list, parsed with ast): real human-written text, identical on every machine with "
        f"Python {version}{note}",
        hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


class _Tokenizer:
    """Shared vocabulary logic: id 0 is ``<pad>``, id 1 is ``<unk>``, then tokens."""

    pad_id = 0
    unk_id = 1
    unk_text = UNK

    def __init__(self, tokens: Sequence[str]):
        if PAD in tokens or UNK in tokens:
            raise ValueError(
                f"{type(self).__name__}: {PAD!r} and {UNK!r} are added automatically; remove them from the token list"
            )
        self.itos: list[str] = [PAD, UNK, *tokens]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError(f"{type(self).__name__}: duplicate tokens in the vocabulary")

    @staticmethod
    def _count_and_pick(counts: Counter, min_freq: int, max_size: int | None) -> list[str]:
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        # most frequent first, ties alphabetical: the same vocabulary on every run
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return kept[:max_size] if max_size is not None else kept

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def _join(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def encode(self, text: str) -> torch.Tensor:
        """int64 (T,) ids; a token not in the vocabulary maps to ``unk_id``."""
        ids = [self.stoi.get(t, self.unk_id) for t in self.split(text)]
        return torch.tensor(ids, dtype=torch.int64)

    def decode(self, ids: torch.Tensor | Sequence[int], skip_pad: bool = True) -> str:
        """Text for ``ids`` (1-D); ``<pad>`` is dropped unless ``skip_pad=False``; ``<unk>``
        shows as ``unk_text``. Raises IndexError for an id outside the vocabulary."""
        out = []
        for i in ids.tolist() if isinstance(ids, torch.Tensor) else list(ids):
            if not 0 <= i < len(self.itos):
                raise IndexError(f"decode: id {i} outside the vocabulary of {len(self.itos)}")
            if i == self.pad_id and skip_pad:
                continue
            out.append(self.unk_text if i == self.unk_id else self.itos[i])
        return self._join(out)

    def encode_batch(self, texts: Sequence[str], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode, truncate to ``max_len`` and right-pad with ``pad_id``.

        Returns (ids int64 (B, T), lengths int64 (B,)), T = longest kept length; mask the
        loss with ``ids != pad_id``.
        """
        seqs = [self.encode(t) for t in texts]
        if max_len is not None:
            seqs = [s[:max_len] for s in seqs]
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
        width = int(lengths.max()) if len(seqs) else 0
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.int64)  # (B, T)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = s
        return ids, lengths


class CharTokenizer(_Tokenizer):
    """Character-level tokenizer: one id per Unicode code point.

    ``<unk>`` decodes to U+FFFD (the replacement character) so a decoded string keeps one
    character per id.
    """

    unk_text = "\ufffd"

    @classmethod
    def fit(cls, train: str | Iterable[str], min_freq: int = 1, max_size: int | None = None) -> CharTokenizer:
        """Vocabulary of the characters in the training text (a string or strings) seen
        at least ``min_freq`` times, at most ``max_size`` of them (most frequent kept)."""
        counts: Counter = Counter()
        for t in [train] if isinstance(train, str) else train:
            counts.update(t)
        return cls(cls._count_and_pick(counts, min_freq, max_size))

    def split(self, text: str) -> list[str]:
        return list(text)

    def _join(self, tokens: list[str]) -> str:
        return "".join(tokens)


class WordTokenizer(_Tokenizer):
    """Word-level tokenizer: words (``\\w+``, keeping an inner apostrophe as in
    "don't") and single punctuation marks, lowercased by default; decodes with spaces."""

    _PATTERN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")

    def __init__(self, tokens: Sequence[str], lowercase: bool = True):
        super().__init__(tokens)
        self.lowercase = lowercase

    @classmethod
    def fit(
        cls, train: str | Iterable[str], min_freq: int = 1, max_size: int | None = None, lowercase: bool = True
    ) -> WordTokenizer:
        """Vocabulary of the words in the training texts seen at least ``min_freq``
        times, at most ``max_size`` (most frequent kept). Words only in test data then
        encode as ``<unk>``, as they would for a model in use."""
        probe = cls([], lowercase)
        counts: Counter = Counter()
        for t in [train] if isinstance(train, str) else train:
            counts.update(probe.split(t))
        return cls(cls._count_and_pick(counts, min_freq, max_size), lowercase)

    def split(self, text: str) -> list[str]:
        return self._PATTERN.findall(text.lower() if self.lowercase else text)

    def _join(self, tokens: list[str]) -> str:
        return " ".join(tokens)
