"""MNIST / Fashion-MNIST IDX files: reader and writer.

Format source: Y. LeCun, C. Cortes, C. J. C. Burges, "THE MNIST DATABASE of handwritten
digits", http://yann.lecun.com/exdb/mnist/ (section "FILE FORMATS FOR THE MNIST
DATABASE"); Fashion-MNIST (H. Xiao, K. Rasul, R. Vollgraf, 2017,
https://github.com/zalandoresearch/fashion-mnist) uses the same files and names.

An IDX file is big-endian::

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                           0x0D float32, 0x0E float64
    byte  3     number of dimensions D
    4*D bytes   each dimension as a big-endian int32
    then        the values, row-major (last index fastest)

so MNIST images carry magic 0x00000803 (uint8, 3 dims: N, 28, 28) and labels 0x00000801
(uint8, 1 dim: N). The distributed files are gzip-compressed; the reader detects gzip by
its magic bytes 0x1F 0x8B, never by the file name.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DataFormatError, DataNotFoundError
from .sets import ImageSet

# type code -> (big-endian numpy dtype, torch dtype, name)
IDX_TYPES: dict[int, tuple[str, torch.dtype, str]] = {
    0x08: (">u1", torch.uint8, "uint8"),
    0x09: (">i1", torch.int8, "int8"),
    0x0B: (">i2", torch.int16, "int16"),
    0x0C: (">i4", torch.int32, "int32"),
    0x0D: (">f4", torch.float32, "float32"),
    0x0E: (">f8", torch.float64, "float64"),
}
_TORCH_TO_CODE = {v[1]: k for k, v in IDX_TYPES.items()}

MNIST_IMAGES_MAGIC = 0x00000803
MNIST_LABELS_MAGIC = 0x00000801

#: Fashion-MNIST class names, from the data set's README (label k names class k).
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(d) for d in range(10))

#: split -> (images file, labels file), the canonical names of the four files.
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the file starts with the gzip magic bytes."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataNotFoundError(f"IDX file {path.name}", [str(path)]) from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataFormatError(
            path,
            "a complete gzip stream",
            "a gzip stream that ends early (truncated download?)",
            "Delete the file and fetch it again",
        ) from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataFormatError(
            path, "a valid gzip stream", f"corrupt gzip data ({e})", "Delete the file and fetch it again"
        ) from None


def _parse(path: Path, data: bytes) -> tuple[int, tuple[int, ...], np.ndarray]:
    """(magic, dims, values) of one IDX file whose bytes are ``data``."""
    if len(data) < 4:
        raise DataFormatError(path, "an IDX header of at least 4 bytes", f"a file of {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or code not in IDX_TYPES:
        raise DataFormatError(
            path,
            "an IDX magic number 0x0000TTDD with type code TT in " + "/".join(f"0x{c:02X}" for c in IDX_TYPES),
            f"0x{magic:08X}",
            "Is this an IDX file (for example train-images-idx3-ubyte)?",
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataFormatError(
            path, f"{ndim} dimension sizes ({header_len} header bytes)", f"only {len(data)} bytes (truncated file)"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    np_dtype, _, name = IDX_TYPES[code]
    itemsize = np.dtype(np_dtype).itemsize
    count = math.prod(dims)  # Python ints: a garbage header cannot overflow
    want = header_len + count * itemsize
    if len(data) != want:
        what = "truncated file" if len(data) < want else "extra bytes after the data"
        raise DataFormatError(
            path,
            f"{want} bytes for a {name} array of shape {dims}",
            f"{len(data)} bytes ({what})",
            "Delete the file and fetch it again" if len(data) < want else "",
        )
    values = np.frombuffer(data, dtype=np_dtype, count=count, offset=header_len)
    return magic, dims, values.reshape(dims)


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read any IDX file (raw or gzip) into a tensor.

    Returns a tensor of the file's shape and dtype (uint8, int8, int16, int32, float32 or
    float64 per the type code), in native byte order, owning its memory.
    Raises DataFormatError (bad magic, short header, truncated or oversized data, corrupt
    gzip) and DataNotFoundError (no such file); messages name the file.
    """
    path = Path(path)
    _, _, values = _parse(path, _read_bytes(path))
    # astype copies into native byte order and a writable buffer torch can own
    return torch.from_numpy(values.astype(values.dtype.newbyteorder("="), copy=True))


def _read_expecting(path: Path, magic_want: int, what: str) -> np.ndarray:
    magic, dims, values = _parse(path, _read_bytes(path))
    if magic != magic_want:
        raise DataFormatError(
            path, f"magic 0x{magic_want:08X} ({what})", f"0x{magic:08X}", "Are the images and labels files swapped?"
        )
    return values


def read_idx_images(path: str | os.PathLike) -> torch.Tensor:
    """Read an MNIST-style images file: magic 0x00000803, uint8, shape (N, H, W).

    Returns a uint8 tensor (N, H, W), pixel values 0..255 (0 = background).
    Raises DataFormatError naming the file on any other magic or a truncated file.
    """
    path = Path(path)
    values = _read_expecting(path, MNIST_IMAGES_MAGIC, "uint8 images, 3 dims")
    return torch.from_numpy(values.copy())


def read_idx_labels(path: str | os.PathLike) -> torch.Tensor:
    """Read an MNIST-style labels file: magic 0x00000801, uint8, shape (N,).

    Returns an int64 tensor (N,) (int64 so it indexes and feeds ``cross_entropy`` as is).
    Raises DataFormatError naming the file on any other magic or a truncated file.
    """
    path = Path(path)
    values = _read_expecting(path, MNIST_LABELS_MAGIC, "uint8 labels, 1 dim")
    return torch.from_numpy(values.astype(np.int64))


def write_idx(
    path: str | os.PathLike, tensor: torch.Tensor, *, compress: bool | None = None, dtype: torch.dtype | None = None
) -> Path:
    """Write ``tensor`` as an IDX file (big-endian, header per the module docstring).

    Args:
        path: destination; parent directories are created.
        tensor: any shape with 1..255 dims, dtype one of uint8, int8, int16, int32,
            float32, float64 (int64 labels are accepted when ``dtype=torch.uint8``).
        compress: gzip the file; None means "when ``path`` ends in .gz".
        dtype: store as this dtype (values are checked to fit when narrowing ints).
    Returns the path written. Raises TypeError for an unsupported dtype and ValueError
    for values that do not fit the stored dtype.
    """
    path = Path(path)
    t = tensor.detach().cpu()
    dtype = dtype or t.dtype
    if dtype not in _TORCH_TO_CODE:
        raise TypeError(
            f"write_idx: IDX stores {[v[2] for v in IDX_TYPES.values()]}, not "
            f"{dtype}; pass dtype=torch.uint8 (for labels) or cast the tensor"
        )
    if not 1 <= t.dim() <= 255:
        raise ValueError(f"write_idx: IDX needs 1..255 dims, got shape {tuple(t.shape)}")
    if dtype != t.dtype and not dtype.is_floating_point and t.numel():
        info = torch.iinfo(dtype)
        lo, hi = int(t.min()), int(t.max())
        if lo < info.min or hi > info.max:
            raise ValueError(f"write_idx: values {lo}..{hi} do not fit {dtype}")
    code = _TORCH_TO_CODE[dtype]
    header = bytes([0, 0, code, t.dim()]) + b"".join(int(d).to_bytes(4, "big") for d in t.shape)
    body = t.to(dtype).numpy().astype(IDX_TYPES[code][0]).tobytes()
    data = header + body
    if compress if compress is not None else path.suffix == ".gz":
        # mtime=0: the same tensor gives the same bytes (reproducible test files)
        data = gzip.compress(data, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _find(root: Path, name: str, kind: str) -> tuple[Path | None, list[str]]:
    """First existing file for canonical ``name`` under ``root``, and all paths tried."""
    tv_dir = "MNIST" if kind == "mnist" else "FashionMNIST"
    dirs = [root, root / "raw", root / tv_dir / "raw", root / tv_dir]
    # some mirrors (Kaggle) spell "train-images.idx3-ubyte" with a dot
    names = [name, name.replace("-idx", ".idx")]
    tried = []
    for d in dirs:
        for n in names:
            for suffix in ("", ".gz"):
                p = d / (n + suffix)
                tried.append(str(p))
                if p.is_file():
                    return p, tried
    return None, tried


def load_mnist(root: str | os.PathLike, split: str = "train", kind: str = "mnist") -> ImageSet:
    """Load one split of MNIST or Fashion-MNIST from the four canonical IDX files.

    Args:
        root: directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or ``.gz``;
            also searched: ``root/raw`` and torchvision's ``root/MNIST/raw`` or
            ``root/FashionMNIST/raw``.
        split: "train" (60,000 images in the real files) or "test" (10,000).
        kind: "mnist" or "fashion" (picks class names and the torchvision folder).
    Returns an ImageSet: images uint8 (N, 28, 28), labels int64 (N,) in 0..9.
    Raises DataNotFoundError listing the paths tried, DataFormatError for bad files or
    image/label counts that disagree, ValueError for a bad ``split``/``kind``.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"load_mnist: split must be 'train' or 'test', got {split!r}")
    if kind not in ("mnist", "fashion"):
        raise ValueError(f"load_mnist: kind must be 'mnist' or 'fashion', got {kind!r}")
    root = Path(root)
    found = []
    for name in MNIST_FILES[split]:
        p, tried = _find(root, name, kind)
        if p is None:
            raise DataNotFoundError(
                f"{kind} {split} file {name}",
                tried,
                f"Put the IDX files in {root} or run `drills data fetch "
                f"{'mnist' if kind == 'mnist' else 'fashion_mnist'}`",
            )
        found.append(p)
    images = read_idx_images(found[0])
    labels = read_idx_labels(found[1])
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            found[1], f"{images.shape[0]} labels (one per image in {found[0].name})", f"{labels.shape[0]}"
        )
    if labels.numel() and int(labels.max()) > 9:
        raise DataFormatError(found[1], "labels 0..9", f"label {int(labels.max())}")
    classes = MNIST_CLASSES if kind == "mnist" else FASHION_MNIST_CLASSES
    name = "MNIST" if kind == "mnist" else "Fashion-MNIST"
    return ImageSet(images, labels, classes, f"{name} {split} split, real IDX files at {found[0].parent}")


def write_mnist(
    root: str | os.PathLike, split: str, images: torch.Tensor, labels: torch.Tensor, *, compress: bool = True
) -> tuple[Path, Path]:
    """Write images uint8 (N, H, W) and labels (N,) in 0..255 as the two canonical files
    of ``split`` under ``root`` (``.gz`` when ``compress``). For tests and conversions.
    Returns (images path, labels path)."""
    if split not in MNIST_FILES:
        raise ValueError(f"write_mnist: split must be 'train' or 'test', got {split!r}")
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise TypeError(f"write_mnist: images must be uint8 (N, H, W), got {images.dtype} {tuple(images.shape)}")
    suffix = ".gz" if compress else ""
    img_name, lab_name = MNIST_FILES[split]
    root = Path(root)
    return (
        write_idx(root / (img_name + suffix), images, compress=compress),
        write_idx(root / (lab_name + suffix), labels, compress=compress, dtype=torch.uint8),
    )
