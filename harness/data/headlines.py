"""Headline topic data for 6.03 transformers.news_headlines: real CSV/TSV files or a synthetic stand-in."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from harness.data.errors import DataFormatError
from harness.data.sources import resolve
from harness.data.synthetic import synthetic_headlines
from harness.data.text_sets import read_headlines


def load_headlines(config, data_dir=None, read=read_headlines):
    """(train, test, description): headline files under ``data_dir`` (else ``$DRILLS_DATA_DIR``), else synthetic.

    ``config`` needs ``n_train``, ``n_test`` (caps) and ``topics`` (synthetic); ``read`` parses one
    file. Files named ``*train*`` and ``*test*`` are used as such (the test file's labels renumbered
    by the training file's class names), else the first file is split 80/20 with a seeded permutation.

    Raises:
        DataFormatError: a malformed file, or test classes the training file lacks.
    """
    src = resolve("headlines", data_dir)
    if src.kind == "files":
        files = sorted(p for p in Path(src.path).iterdir() if p.suffix.lower() in (".csv", ".tsv"))
        train_f = [f for f in files if "train" in f.name.lower()]
        test_f = [f for f in files if "test" in f.name.lower()]
        if train_f and test_f:
            tr, te = read(train_f[0]), read(test_f[0])
            # each file numbers its own sorted class names: renumber the test file's by the train file's
            unknown = sorted(set(te.classes) - set(tr.classes))
            if unknown:
                raise DataFormatError(test_f[0], f"only classes of {train_f[0].name}: {tr.classes}", f"also {unknown}")
            remap = torch.tensor([tr.classes.index(c) for c in te.classes], dtype=torch.int64)
            te = dataclasses.replace(te, labels=remap[te.labels], classes=tr.classes)
        else:
            full = read(files[0])
            order = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))
            cut = int(0.8 * len(full))
            tr, te = full.take(order[:cut]), full.take(order[cut:])
        tr = tr.take(torch.arange(min(config.n_train, len(tr))))
        te = te.take(torch.arange(min(config.n_test, len(te))))
        return tr, te, f"{tr.description} (+ {len(te)} test rows)"
    tr = synthetic_headlines(config.n_train, config.topics, seed=0)
    te = synthetic_headlines(config.n_test, config.topics, seed=1)
    return tr, te, f"SYNTHETIC stand-in (no headline files found): {tr.description}"


def write_headlines(folder: Path, files: Mapping[str, Sequence[tuple[str, str]]]) -> Path:
    """Write each ``name -> [(headline, category), ...]`` of ``files`` under ``folder`` (created) with
    a ``headline,category`` header, tab-separated for a ``.tsv`` name, else comma-separated, quoting
    as the csv module does (a comma or a quote inside a headline); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            sep = "\t" if name.lower().endswith(".tsv") else ","
            csv.writer(f, delimiter=sep).writerows([("headline", "category"), *rows])
    return folder
