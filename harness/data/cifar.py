"""CIFAR-10 and CIFAR-100 "python version" batches: reader and writer.

Format source: A. Krizhevsky, "The CIFAR-10 and CIFAR-100 datasets",
https://www.cs.toronto.edu/~kriz/cifar.html (section "Dataset layout", "Python / Matlab
versions"), and Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
2009 (the tech report that introduced them).

Each batch file is a Python 2 pickle of a dict:

* ``data``: numpy uint8 array (N, 3072); each row is a 32x32 colour image stored as the
  1024 red values, then 1024 green, then 1024 blue, each channel row-major;
* ``labels`` (CIFAR-10, 0..9), or ``fine_labels`` (0..99) and ``coarse_labels`` (0..19)
  (CIFAR-100): lists of N ints;
* ``batch_label``, ``filenames``: informational.

CIFAR-10 ships ``cifar-10-batches-py/data_batch_1`` .. ``data_batch_5`` (10,000 images
each), ``test_batch`` and ``batches.meta`` (``label_names``); CIFAR-100 ships
``cifar-100-python/train`` (50,000), ``test`` (10,000) and ``meta``
(``fine_label_names``, ``coarse_label_names``). Keys and names are byte strings in the
real files (Python 2 ``str``); the reader accepts bytes or str.

Pickles can run code when loaded, so the reader unpickles with an allow-list that admits
only what these files contain (numpy array reconstruction and ``_codecs.encode``); any
other global in the file is reported as a format error instead of being imported.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DataFormatError, DataNotFoundError
from .sets import ImageSet

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def __init__(self, f: io.BufferedIOBase, path: Path):
        # latin1: how numpy (and torchvision) read Python 2 pickles of numpy arrays
        super().__init__(f, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise DataFormatError(
                self._path,
                "a CIFAR batch pickle (numpy arrays, lists, strings)",
                f"a reference to {module}.{name}",
                "Refusing to import it; is this really a CIFAR batch?",
            )
        if module == "numpy.core.multiarray":
            # numpy 2 moved numpy.core to numpy._core and warns on the old name
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            obj = _BatchUnpickler(f, path).load()
    except FileNotFoundError:
        raise DataNotFoundError(f"CIFAR file {path.name}", [str(path)]) from None
    except DataFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataFormatError(
            path,
            "a complete pickled dict",
            f"unreadable data ({e!r})",
            "The file may be truncated or not a CIFAR python batch",
        ) from None
    if not isinstance(obj, dict):
        raise DataFormatError(path, "a pickled dict", f"a pickled {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _names(values: Any) -> tuple[str, ...]:
    return tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values)


def read_cifar_batch(
    path: str | os.PathLike, label_key: str = "labels", num_classes: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one CIFAR python batch file.

    Args:
        path: a batch such as ``data_batch_1``, ``test_batch`` or CIFAR-100 ``train``.
        label_key: "labels" (CIFAR-10), "fine_labels" or "coarse_labels" (CIFAR-100).
        num_classes: when given, labels must lie in 0..num_classes-1.
    Returns (images uint8 (N, 3, 32, 32), labels int64 (N,)).
    Raises DataFormatError naming the file for a missing key (listing the keys found),
    a data array that is not uint8 (N, 3072), a label count that differs from N or a label
    out of range; DataNotFoundError when the file is absent.
    """
    path = Path(path)
    d = _unpickle(path)
    missing = [k for k in ("data", label_key) if k not in d]
    if missing:
        raise DataFormatError(
            path,
            f"keys 'data' and {label_key!r}",
            f"keys {sorted(d)}",
            "CIFAR-100 uses label_key='fine_labels' or 'coarse_labels'" if label_key == "labels" else "",
        )
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        found = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataFormatError(path, "'data' as a uint8 array of shape (N, 3072)", found)
    labels = torch.as_tensor(np.asarray(d[label_key], dtype=np.int64))
    if labels.dim() != 1 or labels.shape[0] != data.shape[0]:
        raise DataFormatError(path, f"{data.shape[0]} {label_key} (one per image)", f"shape {tuple(labels.shape)}")
    if num_classes is not None and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DataFormatError(
            path, f"{label_key} in 0..{num_classes - 1}", f"values {int(labels.min())}..{int(labels.max())}"
        )
    # (N, 3072) -> (N, 3, 32, 32): channel planes, each row-major
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, labels


def _dataset_dir(root: Path, dirname: str, marker: str) -> Path:
    for d in (root, root / dirname):
        if (d / marker).is_file():
            return d
    raise DataNotFoundError(
        f"{dirname} ({marker})",
        [str(root / marker), str(root / dirname / marker)],
        f"Extract {dirname.replace('-batches-py', '-python')}.tar.gz "
        f"under {root} or run `drills data fetch "
        f"{'cifar10' if '10-' in dirname else 'cifar100'}`",
    )


def load_cifar10(root: str | os.PathLike, split: str = "train") -> ImageSet:
    """Load CIFAR-10 from ``root`` (the ``cifar-10-batches-py`` folder or its parent).

    split "train" concatenates ``data_batch_1..5`` (50,000 images in the real set), "test"
    reads ``test_batch`` (10,000). Class names come from ``batches.meta`` when present,
    else the published list. Returns ImageSet: uint8 (N, 3, 32, 32), int64 (N,) in 0..9.
    Raises DataNotFoundError / DataFormatError naming the file.
    """
    if split not in ("train", "test"):
        raise ValueError(f"load_cifar10: split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    names: tuple[str, ...] = CIFAR10_TRAIN_BATCHES if split == "train" else ("test_batch",)
    d = _dataset_dir(root, CIFAR10_DIR, names[0])
    parts = [read_cifar_batch(d / n, "labels", 10) for n in names]
    classes: tuple[str, ...] = CIFAR10_CLASSES
    if (d / "batches.meta").is_file():
        meta = _unpickle(d / "batches.meta")
        if "label_names" not in meta:
            raise DataFormatError(d / "batches.meta", "key 'label_names'", f"keys {sorted(meta)}")
        classes = _names(meta["label_names"])
    return ImageSet(
        torch.cat([p[0] for p in parts]),
        torch.cat([p[1] for p in parts]),
        classes,
        f"CIFAR-10 {split} split, real python batches at {d}",
    )


def load_cifar100(root: str | os.PathLike, split: str = "train", label: str = "fine") -> ImageSet:
    """Load CIFAR-100 from ``root`` (the ``cifar-100-python`` folder or its parent).

    Args:
        split: "train" (50,000 in the real set) or "test" (10,000).
        label: "fine" (100 classes) or "coarse" (20 superclasses).
    Class names come from ``meta`` when present, else are "0".."99" / "0".."19".
    Returns ImageSet: uint8 (N, 3, 32, 32), int64 (N,).
    """
    if split not in ("train", "test"):
        raise ValueError(f"load_cifar100: split must be 'train' or 'test', got {split!r}")
    if label not in ("fine", "coarse"):
        raise ValueError(f"load_cifar100: label must be 'fine' or 'coarse', got {label!r}")
    n = 100 if label == "fine" else 20
    d = _dataset_dir(Path(root), CIFAR100_DIR, split)
    images, labels = read_cifar_batch(d / split, f"{label}_labels", n)
    classes = tuple(str(i) for i in range(n))
    if (d / "meta").is_file():
        meta = _unpickle(d / "meta")
        key = f"{label}_label_names"
        if key not in meta:
            raise DataFormatError(d / "meta", f"key {key!r}", f"keys {sorted(meta)}")
        classes = _names(meta[key])
    return ImageSet(images, labels, classes, f"CIFAR-100 {split} split ({label} labels), real python batches at {d}")


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler that stores ``bytes`` as Python 2 ``str`` opcodes (BINSTRING),
    so written files load exactly as the distributed Python 2 files do."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)  # type: ignore[attr-defined]  # pickle._Pickler's
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)  # type: ignore[attr-defined]
        self.memoize(obj)  # type: ignore[attr-defined]

    dispatch[bytes] = save_bytes  # type: ignore[assignment]  # _Pickler's dispatch takes (self, obj)


def _dump_py2(obj: dict[bytes, Any], path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # the real files were written by numpy 1.x under Python 2, which named the module
    # numpy.core.multiarray; numpy 2 writes numpy._core. GLOBAL is a text opcode, so the
    # name can be swapped in place.
    data = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_cifar_batch(
    path: str | os.PathLike,
    images: torch.Tensor,
    labels: dict[str, torch.Tensor] | torch.Tensor,
    batch_label: str = "written by harness.data",
) -> Path:
    """Write a batch in the real layout: Python 2 string keys, uint8 (N, 3072) numpy data,
    lists of int labels, pickle protocol 2, as the distributed files are.

    Args:
        images: uint8 (N, 3, 32, 32) or (N, 3072).
        labels: int (N,) tensor stored as ``labels`` (CIFAR-10), or a dict such as
            ``{"fine_labels": ..., "coarse_labels": ...}``.
    Returns the path written.
    """
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) not in ((3, 32, 32), (3072,)):
        raise TypeError(
            f"write_cifar_batch: images must be uint8 (N, 3, 32, 32), got {images.dtype} {tuple(images.shape)}"
        )
    if isinstance(labels, torch.Tensor):
        labels = {"labels": labels}
    n = images.shape[0]
    d: dict[bytes, Any] = {
        b"batch_label": batch_label.encode(),
        b"data": images.reshape(n, 3072).numpy().copy(),  # (N, 3072)
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(n)],
    }
    for k, v in labels.items():
        d[k.encode()] = [int(x) for x in v.tolist()]
    return _dump_py2(d, path)


def write_cifar_meta(path: str | os.PathLike, **names: list[str]) -> Path:
    """Write a meta file, e.g. ``label_names=[...]`` (CIFAR-10 ``batches.meta``) or
    ``fine_label_names=[...], coarse_label_names=[...]`` (CIFAR-100 ``meta``)."""
    return _dump_py2({k.encode(): [n.encode() for n in v] for k, v in names.items()}, path)


def write_cifar10(
    root: str | os.PathLike,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    classes: tuple[str, ...] = CIFAR10_CLASSES,
) -> Path:
    """Write a complete ``root/cifar-10-batches-py`` tree: the train pair split into
    ``data_batch_1..5`` (as evenly as possible), ``test_batch`` and ``batches.meta``.
    Pairs are (images uint8 (N, 3, 32, 32), labels int (N,)). Returns the folder."""
    d = Path(root) / CIFAR10_DIR
    images, labels = train
    for name, idx in zip(CIFAR10_TRAIN_BATCHES, torch.tensor_split(torch.arange(images.shape[0]), 5)):
        write_cifar_batch(d / name, images[idx], labels[idx], f"training batch {name[-1]} of 5")
    write_cifar_batch(d / "test_batch", test[0], test[1], "testing batch 1 of 1")
    write_cifar_meta(d / "batches.meta", label_names=list(classes))
    return d


def write_cifar100(
    root: str | os.PathLike,
    split: str,
    images: torch.Tensor,
    fine_labels: torch.Tensor,
    coarse_labels: torch.Tensor,
    fine_names: list[str] | None = None,
    coarse_names: list[str] | None = None,
) -> Path:
    """Write ``root/cifar-100-python/<split>`` (and ``meta`` when names are given).
    Returns the folder."""
    d = Path(root) / CIFAR100_DIR
    write_cifar_batch(d / split, images, {"fine_labels": fine_labels, "coarse_labels": coarse_labels}, split)
    if fine_names is not None and coarse_names is not None:
        write_cifar_meta(d / "meta", fine_label_names=fine_names, coarse_label_names=coarse_names)
    return d
