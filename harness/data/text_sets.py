"""Readers for labelled text: IMDB folders, CoNLL NER files, parallel TSV, CSV headlines.

Format sources:
* IMDB: A. Maas et al., "Learning Word Vectors for Sentiment Analysis", ACL 2011; the
  ``aclImdb_v1.tar.gz`` README (https://ai.stanford.edu/~amaas/data/sentiment/): one
  review per file, ``{train,test}/{pos,neg}/<id>_<rating>.txt`` (``unsup/`` is unlabelled
  and skipped); reviews contain HTML line breaks ``<br />``.
* CoNLL-2003: E. F. Tjong Kim Sang, F. De Meulder, "Introduction to the CoNLL-2003 Shared
  Task", 2003 (https://www.clips.uantwerpen.be/conll2003/ner/): one token per line,
  whitespace-separated columns (token, POS, chunk, NER tag), a blank line between
  sentences, ``-DOCSTART- -X- -X- O`` lines between documents. The original tags are
  IOB1; :func:`iob1_to_bio` converts them to BIO (IOB2).
* Parallel corpora: the tab-separated ``source<TAB>target[<TAB>attribution]`` lines of the
  Tatoeba/ManyThings ``fra.txt`` files (https://www.manythings.org/anki/) used by the
  PyTorch seq2seq tutorial.
* Headlines: a CSV/TSV with a header naming a text column and a label column (as the
  Kaggle "News Category" and AG News CSV exports).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch

from .errors import DataFormatError, DataNotFoundError
from .sets import ParallelSet, TaggedSentences, TextClassificationSet
from .text import read_text

IMDB_CLASSES = ("neg", "pos")


def _imdb_dir(root: Path, split: str) -> Path:
    for d in (root, root / "aclImdb"):
        if (d / split / "pos").is_dir() and (d / split / "neg").is_dir():
            return d / split
    raise DataNotFoundError(
        f"IMDB {split} split",
        [str(root / split / "pos"), str(root / "aclImdb" / split / "pos")],
        f"Extract aclImdb_v1.tar.gz under {root} or run `drills data fetch imdb`",
    )


def read_imdb(
    root: str | os.PathLike, split: str = "train", *, clean_html: bool = True, max_per_class: int | None = None
) -> TextClassificationSet:
    """Read the IMDB review folders of one split.

    Args:
        root: the ``aclImdb`` folder or its parent.
        split: "train" or "test" (12,500 reviews per class each in the real set).
        clean_html: replace the ``<br />`` line breaks in the reviews with a space.
        max_per_class: keep only the first k files (in sorted name order) of each class.
    Returns TextClassificationSet: all ``neg`` reviews (label 0) then all ``pos`` (label
    1), files in sorted name order. Raises DataNotFoundError when a class folder is
    missing, DataFormatError when one holds no ``.txt`` file or a file is not UTF-8.
    """
    if split not in ("train", "test"):
        raise ValueError(f"read_imdb: split must be 'train' or 'test', got {split!r}")
    d = _imdb_dir(Path(root), split)
    texts: list[str] = []
    labels: list[int] = []
    for label, cls in enumerate(IMDB_CLASSES):
        files = sorted((d / cls).glob("*.txt"))
        if not files:
            raise DataFormatError(d / cls, "review files *.txt", "none")
        for f in files[:max_per_class]:
            t = read_text(f).strip()
            if clean_html:
                t = t.replace("<br />", " ").replace("<br/>", " ")
            texts.append(t)
            labels.append(label)
    return TextClassificationSet(
        texts,
        torch.tensor(labels, dtype=torch.int64),
        IMDB_CLASSES,
        f"IMDB reviews (Maas et al. 2011), {split} split, {len(texts)} real reviews at {d}",
    )


def _tag_names(tags: list[list[str]]) -> tuple[str, ...]:
    seen = {t for s in tags for t in s}
    return (("O",) if "O" in seen else ()) + tuple(sorted(seen - {"O"}))


def read_conll(
    path: str | os.PathLike, *, token_col: int = 0, tag_col: int = -1, sep: str | None = None
) -> TaggedSentences:
    """Read a CoNLL-2003-style file into sentences of (token, tag).

    Args:
        path: the file (UTF-8).
        token_col, tag_col: columns holding the token and the tag (default first and
            last, which fits both the 4-column CoNLL-2003 files and 2-column variants).
        sep: column separator; None splits on any whitespace (CoNLL-2003), "\\t" for
            files whose tokens may contain spaces.
    Blank lines end a sentence; ``-DOCSTART-`` lines are skipped and never make an
    empty sentence. Tags are returned as in the file (see :func:`iob1_to_bio`).
    Returns TaggedSentences. Raises DataFormatError naming the file and line for a line
    with too few columns.
    """
    path = Path(path)
    need = max(token_col if token_col >= 0 else -token_col - 1, tag_col if tag_col >= 0 else -tag_col - 1) + 1
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    toks: list[str] = []
    tgs: list[str] = []
    for n, line in enumerate(read_text(path).split("\n"), start=1):
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            if toks:
                sentences.append(toks)
                tags.append(tgs)
                toks, tgs = [], []
            continue
        cols = line.split(sep) if sep is not None else line.split()
        if len(cols) < max(need, 2):
            raise DataFormatError(
                path, f"at least {max(need, 2)} columns (token ... tag) on line {n}", f"{len(cols)}: {line!r}"
            )
        toks.append(cols[token_col])
        tgs.append(cols[tag_col])
    if toks:  # file without a final blank line
        sentences.append(toks)
        tags.append(tgs)
    return TaggedSentences(
        sentences,
        tags,
        _tag_names(tags),
        f"CoNLL-format NER file {path.name}: {len(sentences)} real sentences at {path}",
    )


def iob1_to_bio(tags: list[str]) -> list[str]:
    """Convert IOB1 tags (CoNLL-2003's original scheme: ``B-`` only between two adjacent
    entities of one type) to BIO/IOB2 (every entity starts with ``B-``)."""
    out = []
    prev = "O"
    for t in tags:
        if t.startswith("I-"):
            kind = t[2:]
            if prev == "O" or prev[2:] != kind:
                t = "B-" + kind
        out.append(t)
        prev = t
    return out


def read_parallel_tsv(path: str | os.PathLike, *, src_col: int = 0, tgt_col: int = 1) -> ParallelSet:
    """Read ``source<TAB>target`` lines (extra columns, e.g. attribution, are ignored).

    Blank lines are skipped. Returns ParallelSet. Raises DataFormatError naming the file
    and line when a line has too few tab-separated columns.
    """
    path = Path(path)
    need = max(src_col, tgt_col) + 1
    src: list[str] = []
    tgt: list[str] = []
    for n, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < need:
            raise DataFormatError(
                path,
                f"{need} tab-separated columns on line {n}",
                f"{len(cols)}: {line[:60]!r}",
                "Separate source and target with a tab character",
            )
        src.append(cols[src_col].strip())
        tgt.append(cols[tgt_col].strip())
    return ParallelSet(src, tgt, f"parallel corpus {path.name}: {len(src)} real sentence pairs at {path}")


def read_headlines(
    path: str | os.PathLike,
    *,
    text_col: str | int = "headline",
    label_col: str | int = "category",
    delimiter: str | None = None,
    header: bool = True,
) -> TextClassificationSet:
    """Read headlines with a topic label from a CSV or TSV file.

    Args:
        text_col, label_col: column names (with ``header=True``) or 0-based indexes.
        delimiter: default "\\t" for ``.tsv``, else ",".
        header: whether the first row names the columns.
    Labels become indices into the sorted class names (numeric order if all integers).
    Returns TextClassificationSet. Raises DataFormatError naming the file for a missing
    column or a short row.
    """
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f, delimiter=delimiter) if r]
    except FileNotFoundError:
        raise DataNotFoundError(f"headline file {path.name}", [str(path)]) from None
    first = 1 if header else 0
    if header:
        if not rows:
            raise DataFormatError(path, "a header row", "an empty file")
        names = [h.strip() for h in rows[0]]
        cols = []
        for c in (text_col, label_col):
            if isinstance(c, int):
                cols.append(c)
            elif c in names:
                cols.append(names.index(c))
            else:
                raise DataFormatError(path, f"a column named {c!r}", f"columns {names}")
    else:
        if not (isinstance(text_col, int) and isinstance(label_col, int)):
            raise TypeError("read_headlines: without a header, text_col and label_col must be column indexes")
        cols = [text_col, label_col]
    texts, raw = [], []
    for n, row in enumerate(rows[first:], start=first + 1):
        if len(row) <= max(cols):
            raise DataFormatError(
                path,
                f"at least {max(cols) + 1} fields on row {n}",
                f"{len(row)}",
                "Quote fields that contain the delimiter",
            )
        texts.append(row[cols[0]].strip())
        raw.append(row[cols[1]].strip())
    distinct = set(raw)
    try:
        classes = tuple(sorted(distinct, key=int))
    except ValueError:
        classes = tuple(sorted(distinct))
    index = {c: k for k, c in enumerate(classes)}
    return TextClassificationSet(
        texts,
        torch.tensor([index[r] for r in raw], dtype=torch.int64),
        classes,
        f"headlines {path.name}: {len(texts)} real rows, {len(classes)} classes, at {path}",
    )
