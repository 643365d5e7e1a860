"""Tabular data: a CSV reader, embedded real sets from scikit-learn, standardisation and a
seeded stratified split.

Sources:
* CSV: RFC 4180 (comma-separated values, first row a header), read with :mod:`csv`.
* Embedded real data shipped inside scikit-learn (``sklearn.datasets``, no download):
  ``load_digits`` (UCI "Optical Recognition of Handwritten Digits", 1,797 8x8 images,
  values 0..16), ``load_breast_cancer`` (UCI Breast Cancer Wisconsin (Diagnostic), 569 x
  30), ``load_wine`` (UCI Wine, 178 x 13), ``load_iris`` (Fisher 1936, 150 x 4).
* Standardisation: z = (x - mean) / std with the population std, as
  ``sklearn.preprocessing.StandardScaler`` computes it; fitted on the training rows only
  so no statistic of the test rows leaks into training.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch

from .errors import DataFormatError, DataNotFoundError
from .sets import ImageSet, TabularSet

TABULAR_SETS = ("breast_cancer", "wine", "iris")
_MISSING = {"", "na", "nan", "null", "none", "?"}


def _label_classes(values: list[str]) -> tuple[str, ...]:
    """Sorted distinct labels; numerically when every label is an integer."""
    distinct = set(values)
    try:
        return tuple(sorted(distinct, key=int))
    except ValueError:
        return tuple(sorted(distinct))


def read_csv_table(
    path: str | os.PathLike, label: str, *, features: list[str] | None = None, delimiter: str | None = None
) -> TabularSet:
    """Read a CSV/TSV file with a header row into numeric features and class labels.

    Args:
        path: the file; UTF-8 (a BOM is tolerated).
        label: name of the label column; its values are class names (any strings) and
            become indices into the sorted class list (numeric order if all integers).
        features: feature columns to keep, in this order; default every column but
            ``label``.
        delimiter: default "\\t" for ``.tsv`` files, else ",".
    Returns TabularSet: features float32 (N, F) raw values, labels int64 (N,).
    Raises DataNotFoundError if absent; DataFormatError naming the file (and line and
    column) for an empty file, a missing column, a ragged row, a missing value or a
    non-numeric feature.
    """
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except FileNotFoundError:
        raise DataNotFoundError(f"CSV file {path.name}", [str(path)]) from None
    rows = [r for r in rows if any(c.strip() for c in r)]  # blank lines carry no row
    if not rows:
        raise DataFormatError(path, "a header row and data rows", "an empty file")
    header = [h.strip() for h in rows[0]]
    if label not in header:
        raise DataFormatError(path, f"a label column named {label!r}", f"columns {header}")
    wanted = features if features is not None else [h for h in header if h != label]
    absent = [c for c in wanted if c not in header]
    if absent:
        raise DataFormatError(path, f"feature columns {absent}", f"columns {header}")
    cols = [header.index(c) for c in wanted]
    li = header.index(label)
    x = np.empty((len(rows) - 1, len(cols)), dtype=np.float32)
    labels: list[str] = []
    for i, row in enumerate(rows[1:]):
        line = i + 2  # 1-based, after the header
        if len(row) != len(header):
            raise DataFormatError(
                path, f"{len(header)} fields on line {line}", f"{len(row)}", "Quote fields that contain the delimiter"
            )
        for j, c in enumerate(cols):
            cell = row[c].strip()
            if cell.lower() in _MISSING:
                raise DataFormatError(
                    path,
                    f"a number in column {wanted[j]!r} on line {line}",
                    f"a missing value {cell!r}",
                    "Fill or drop missing values before loading",
                )
            try:
                x[i, j] = float(cell)
            except ValueError:
                raise DataFormatError(path, f"a number in column {wanted[j]!r} on line {line}", repr(cell)) from None
        labels.append(row[li].strip())
    if not labels:
        raise DataFormatError(path, "at least one data row", "only a header")
    classes = _label_classes(labels)
    index = {c: k for k, c in enumerate(classes)}
    y = torch.tensor([index[v] for v in labels], dtype=torch.int64)
    return TabularSet(
        torch.from_numpy(x),
        y,
        tuple(wanted),
        classes,
        f"CSV table {path.name} ({len(labels)} rows, {len(cols)} features), real file at {path}",
    )


def fit_standardizer(train: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and population std of the training rows.

    Args:
        train: float (N, F) training features only (never the test rows).
        eps: a std at or below this (a constant feature) is replaced by 1, so
            :func:`standardize` maps that feature to 0 instead of dividing by zero.
    Returns (mean (F,), std (F,)) in ``train``'s dtype. Raises ValueError for a tensor that
    is not 2-D with at least one row, TypeError for a non-float tensor.
    """
    if not train.is_floating_point():
        raise TypeError(f"fit_standardizer: needs float features, got {train.dtype}")
    if train.dim() != 2 or train.shape[0] < 1:
        raise ValueError(f"fit_standardizer: needs (N, F) with N >= 1, got {tuple(train.shape)}")
    mean = train.mean(dim=0)
    std = train.std(dim=0, correction=0)  # population std, as StandardScaler
    std = torch.where(std <= eps, torch.ones_like(std), std)
    return mean, std


def standardize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std, broadcasting (N, F) against (F,). Returns a new tensor."""
    if x.shape[-1] != mean.shape[-1]:
        raise ValueError(f"standardize: x has {x.shape[-1]} features, the statistics {mean.shape[-1]}")
    return (x - mean) / std


def stratified_split(
    labels: torch.Tensor, test_fraction: float = 0.25, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded stratified train/test split.

    Each class keeps round(n_c * test_fraction) of its n_c rows for the test side, at
    least 1 and at most n_c - 1 when n_c >= 2 (a class of one row goes to train), chosen
    by a ``torch.Generator`` seeded with ``seed`` (same seed -> same split on every
    machine).
    Args:
        labels: int64 (N,).
        test_fraction: in (0, 1).
    Returns (train_idx, test_idx): int64, sorted, disjoint, covering 0..N-1.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"stratified_split: test_fraction must be in (0, 1), got {test_fraction}")
    if labels.dim() != 1:
        raise ValueError(f"stratified_split: labels must be (N,), got {tuple(labels.shape)}")
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in torch.unique(labels).tolist():  # sorted, so the draw order is fixed
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        n = idx.numel()
        k = min(max(round(n * test_fraction), 1), n - 1) if n >= 2 else 0
        test.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def load_digits_images() -> ImageSet:
    """scikit-learn's digits: 1,797 real 8x8 handwritten digits, embedded in the package.

    Returns ImageSet: images uint8 (1797, 8, 8) with values 0..16 (divide by 16, not 255,
    to scale to [0, 1]), labels int64 (1797,) in 0..9.
    """
    from sklearn.datasets import load_digits  # lazy: sklearn import takes ~1 s

    d = load_digits()
    images = torch.from_numpy(d.images.astype(np.uint8))  # (1797, 8, 8), exact: values are ints
    labels = torch.from_numpy(d.target.astype(np.int64))
    return ImageSet(
        images,
        labels,
        tuple(str(i) for i in range(10)),
        "scikit-learn digits: 1,797 real 8x8 handwritten digits (UCI optdigits), "
        "values 0..16, embedded in sklearn.datasets",
    )


def load_tabular(name: str) -> TabularSet:
    """An embedded real tabular set from scikit-learn.

    Args:
        name: "breast_cancer" (569 x 30, 2 classes), "wine" (178 x 13, 3 classes) or
            "iris" (150 x 4, 3 classes).
    Returns TabularSet with float32 raw features (units as in the source) and int64 labels.
    Raises ValueError for another name.
    """
    import sklearn.datasets as skd  # lazy: sklearn import takes ~1 s

    loaders = {"breast_cancer": skd.load_breast_cancer, "wine": skd.load_wine, "iris": skd.load_iris}
    if name not in loaders:
        raise ValueError(f"load_tabular: unknown set {name!r}; choose one of {TABULAR_SETS}")
    d = loaders[name]()
    x = torch.from_numpy(d.data.astype(np.float32))
    y = torch.from_numpy(d.target.astype(np.int64))
    return TabularSet(
        x,
        y,
        tuple(str(f) for f in d.feature_names),
        tuple(str(c) for c in d.target_names),
        f"scikit-learn {name}: {x.shape[0]} real samples x {x.shape[1]} features, "
        f"embedded in sklearn.datasets.load_{name}",
    )
