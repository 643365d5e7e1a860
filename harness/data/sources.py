"""Where each data set comes from: real files, embedded real data, or a synthetic stand-in;
and an explicit, checksum-verified download of the canonical files.

Resolution order (DESIGN.md, "Data"): an explicit ``data_dir`` argument (the CLI's
``--data-dir``) > the environment variable ``DRILLS_DATA_DIR`` > nothing, in which case
the embedded real data or the synthetic generator is used. An explicit directory without
the files is an error (the user asked for real data); an environment directory without
them falls back, and the returned source says so.

:func:`fetch` is the only code here that touches the network, and only when called
(``drills data fetch NAME``); no test and no default run calls it. Checksums: SHA-256 and
sizes from TensorFlow Datasets' ``url_checksums`` (MNIST, Fashion-MNIST, IMDB) and Keras'
``datasets/cifar10.py`` / ``cifar100.py`` (the python-version CIFAR archives).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import DataFormatError, DataNotFoundError
from .synthetic import GENERATORS

ENV_VAR = "DRILLS_DATA_DIR"


class ChecksumError(DataFormatError):
    """A downloaded file's SHA-256 or size differs from the published one."""


@dataclass(frozen=True)
class DatasetSource:
    """Where a data set comes from; ``str()`` is the line shown in reports.

    Fields:
        name: the data set name passed to :func:`resolve`.
        kind: "files" (real files), "embedded" (real data shipped in an installed
            package) or "synthetic" (a generator in ``harness.data.synthetic``).
        location: the folder (files), the package and function (embedded) or the
            generator's description (synthetic).
        path: the folder to hand to the reader when kind == "files", else None.
        note: why a fallback was taken, if one was.
    """

    name: str
    kind: str
    location: str
    path: Path | None = None
    note: str = ""

    @property
    def synthetic(self) -> bool:
        return self.kind == "synthetic"

    def __str__(self) -> str:
        text = {
            "files": f"real files at {self.location}",
            "embedded": f"embedded real data from {self.location}",
            "synthetic": f"synthetic: {self.location}",
        }[self.kind]
        return f"{text} ({self.note})" if self.note else text


def _has_all(d: Path, names: tuple[str, ...]) -> bool:
    return all((d / n).is_file() or (d / (n + ".gz")).is_file() for n in names)


_MNIST_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _first(candidates: list[Path], ok: Callable[[Path], bool]) -> Path | None:
    return next((c for c in candidates if ok(c)), None)


def _any_file(d: Path, patterns: tuple[str, ...]) -> bool:
    return d.is_dir() and any(any(d.glob(p)) for p in patterns)


@dataclass(frozen=True)
class _Spec:
    subdirs: tuple[str, ...]  # folders under the data dir to look in, in order
    ok: Callable[[Path], bool] | None  # does a folder hold the data? None: never files
    fallback_kind: str
    fallback: str


_SKLEARN = "scikit-learn (sklearn.datasets.load_{})"
_SPECS: dict[str, _Spec] = {
    "mnist": _Spec(
        ("mnist", "MNIST/raw", "MNIST", "."),
        lambda d: _has_all(d, _MNIST_NAMES),
        "embedded",
        _SKLEARN.format("digits") + ", 8x8 digits standing in for MNIST",
    ),
    "fashion_mnist": _Spec(
        ("fashion_mnist", "fashion-mnist", "FashionMNIST/raw", "FashionMNIST"),
        lambda d: _has_all(d, _MNIST_NAMES),
        "embedded",
        _SKLEARN.format("digits") + ", 8x8 digits standing in for Fashion-MNIST",
    ),
    "cifar10": _Spec(
        ("cifar10/cifar-10-batches-py", "cifar-10-batches-py", "cifar10"),
        lambda d: (d / "data_batch_1").is_file() and (d / "test_batch").is_file(),
        "synthetic",
        GENERATORS["cifar"],
    ),
    "cifar100": _Spec(
        ("cifar100/cifar-100-python", "cifar-100-python", "cifar100"),
        lambda d: (d / "train").is_file() and (d / "test").is_file(),
        "synthetic",
        GENERATORS["cifar"],
    ),
    "imdb": _Spec(
        ("imdb/aclImdb", "aclImdb", "imdb"),
        lambda d: (d / "train" / "pos").is_dir() and (d / "test" / "neg").is_dir(),
        "synthetic",
        GENERATORS["reviews"],
    ),
    "conll2003": _Spec(("conll2003", "conll"), lambda d: _any_file(d, ("*train*",)), "synthetic", GENERATORS["ner"]),
    "translation": _Spec(
        ("translation",), lambda d: _any_file(d, ("*.tsv", "*.txt")), "synthetic", GENERATORS["translation"]
    ),
    "headlines": _Spec(
        ("headlines",), lambda d: _any_file(d, ("*.csv", "*.tsv")), "synthetic", GENERATORS["headlines"]
    ),
    "corpus": _Spec(
        ("corpus",),
        lambda d: _any_file(d, ("*.txt",)),
        "embedded",
        "the Python standard library's docstrings (harness.data.text.stdlib_corpus)",
    ),
    "token_shards": _Spec(
        ("token_shards", "fineweb10B", "edu_fineweb10B"),
        lambda d: _any_file(d, ("*.bin",)),
        "embedded",
        "the Python standard library's docstrings (harness.data.text.stdlib_corpus), to be tokenized",
    ),
    "planetoid": _Spec(
        ("planetoid", "Planetoid", "Cora/raw", "cora", "."),
        lambda d: _any_file(d, ("ind.*.graph",)),
        "embedded",
        _SKLEARN.format("digits") + " as a 10-nearest-neighbour graph standing in for Cora/Citeseer/Pubmed",
    ),
    "digits": _Spec((), None, "embedded", _SKLEARN.format("digits")),
    "breast_cancer": _Spec((), None, "embedded", _SKLEARN.format("breast_cancer")),
    "wine": _Spec((), None, "embedded", _SKLEARN.format("wine")),
    "iris": _Spec((), None, "embedded", _SKLEARN.format("iris")),
}
DATASETS = tuple(_SPECS)


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """The data folder in force: ``explicit`` if given, else ``$DRILLS_DATA_DIR`` if set
    and non-empty, else None (use embedded or synthetic data)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else None


def resolve(name: str, data_dir: str | os.PathLike | None = None) -> DatasetSource:
    """Say where data set ``name`` will come from.

    Args:
        name: one of :data:`DATASETS`.
        data_dir: explicit data folder (wins over ``$DRILLS_DATA_DIR``).
    Looks in the data folder's conventional subfolders (e.g. ``mnist/``, ``MNIST/raw``,
    ``cifar10/cifar-10-batches-py``, ``imdb/aclImdb``, the layout :func:`fetch` writes).
    Returns a DatasetSource; ``path`` is the folder to give the reader when real files are
    found. Raises ValueError for an unknown name, and DataNotFoundError when ``data_dir``
    was given explicitly but holds no files for ``name``.
    """
    if name not in _SPECS:
        raise ValueError(f"resolve: unknown data set {name!r}; known: {', '.join(DATASETS)}")
    spec = _SPECS[name]
    explicit = data_dir is not None
    root = data_root(data_dir)
    note = ""
    if root is not None and spec.ok is not None:
        tried = [root / s for s in spec.subdirs]
        ok = spec.ok
        hit = _first(tried, lambda d: d.is_dir() and ok(d))
        if hit is not None:
            return DatasetSource(name, "files", str(hit.resolve()), hit.resolve())
        if explicit:
            raise DataNotFoundError(
                f"{name} files",
                [str(t) for t in tried],
                f"Run `drills data fetch {name} --data-dir {root}`"
                if name in REMOTE
                else f"Put the {name} files in {root / spec.subdirs[0]}",
            )
        note = f"{ENV_VAR}={root} has no {name} files"
    return DatasetSource(name, spec.fallback_kind, spec.fallback, None, note)


@dataclass(frozen=True)
class RemoteFile:
    """One canonical file: name, SHA-256 (hex), size in bytes, and whether it is a
    .tar.gz archive to extract after verification."""

    filename: str
    sha256: str
    size: int
    extract: bool = False


#: name -> (mirror base URLs tried in order, files). Checksums: see module docstring.
REMOTE: dict[str, tuple[tuple[str, ...], tuple[RemoteFile, ...]]] = {
    "mnist": (
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        (
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                9912422,
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542
            ),
        ),
    ),
    "fashion_mnist": (
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        (
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                26421880,
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148
            ),
        ),
    ),
    "cifar10": (
        ("https://www.cs.toronto.edu/~kriz/",),
        (
            RemoteFile(
                "cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                170498071,
                extract=True,
            ),
        ),
    ),
    "cifar100": (
        ("https://www.cs.toronto.edu/~kriz/",),
        (
            RemoteFile(
                "cifar-100-python.tar.gz",
                "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
                169001437,
                extract=True,
            ),
        ),
    ),
    "imdb": (
        ("https://ai.stanford.edu/~amaas/data/sentiment/",),
        (
            RemoteFile(
                "aclImdb_v1.tar.gz",
                "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                84125825,
                extract=True,
            ),
        ),
    ),
}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    size: int | None = None,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying SHA-256 (and size if given).

    The bytes go to a temporary file in ``dest``'s folder, hashed while streaming; only a
    verified file is renamed onto ``dest`` (``os.replace``, atomic on one file system), so
    ``dest`` never holds a partial or wrong file and an existing ``dest`` survives a failed
    download. A ``dest`` that already has the right hash is kept without downloading.
    ``progress(done_bytes, total_bytes_or_None)`` is called per block.
    Returns ``dest``. Raises ChecksumError (a DataFormatError) on a mismatch and OSError
    (urllib.error.URLError) when the URL cannot be read.
    """
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    req = urllib.request.Request(url, headers={"User-Agent": "torchdrills-data-fetch"})
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length") if resp.headers else None
            total = int(length) if length else size
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
                h.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if size is not None and done != size:
            raise ChecksumError(
                url, f"{size} bytes", f"{done} bytes", "The download was cut short or the mirror serves another file"
            )
        if h.hexdigest() != sha256:
            raise ChecksumError(
                url,
                f"sha256 {sha256}",
                f"sha256 {h.hexdigest()}",
                "The mirror serves a different file; nothing was written",
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract a .tar.gz into ``dest``: into a temporary folder first, refusing absolute
    paths, ``..`` and links, then moving the top-level entries into place."""
    work = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", dir=dest))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or m.issym() or m.islnk() or m.isdev():
                    raise DataFormatError(
                        archive, "regular files and folders inside the archive", f"unsafe member {m.name!r}"
                    )
            if hasattr(tarfile, "data_filter"):
                tar.extractall(work, members=members, filter="data")
            else:  # Python < 3.11.4: the checks above are the filter
                tar.extractall(work, members=members)
        for entry in sorted(work.iterdir()):
            target = dest / entry.name
            if target.exists():
                raise FileExistsError(f"{target} already exists; remove it to extract {archive.name} again")
            os.replace(entry, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch(
    name: str,
    dest: str | os.PathLike,
    *,
    mirrors: tuple[str, ...] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download (and extract) the canonical files of ``name`` into ``dest/<name>/``.

    The layout written is the one :func:`resolve` looks for, so
    ``resolve(name, dest)`` finds the data afterwards. Each file is verified against its
    published SHA-256 and size before it is kept (see :func:`download`); archives are
    extracted once (a ``.<archive>.extracted`` marker records it). Never called by tests.

    Args:
        name: one of ``REMOTE``: mnist, fashion_mnist, cifar10, cifar100, imdb.
        mirrors: base URLs to try instead of the canonical ones (e.g. a local
            ``file://`` copy); tried in order until one gives the right bytes.
    Returns ``dest/<name>``. Raises ValueError for an unknown name; OSError listing every
    mirror's failure when no mirror gives a verified file.
    """
    if name not in REMOTE:
        raise ValueError(f"fetch: no canonical download for {name!r}; fetchable: {', '.join(REMOTE)}")
    bases, files = REMOTE[name]
    bases = tuple(mirrors) if mirrors else bases
    folder = Path(dest).expanduser() / name
    folder.mkdir(parents=True, exist_ok=True)
    for rf in files:
        target = folder / rf.filename
        errors = []
        for base in bases:
            url = base if base.endswith("/") else base + "/"
            try:
                download(url + rf.filename, target, rf.sha256, rf.size, progress=progress)
                break
            except (OSError, ChecksumError) as e:
                errors.append(f"{url}{rf.filename}: {e}")
        else:
            raise OSError(f"fetch {name}: no mirror gave a verified {rf.filename}:\n  " + "\n  ".join(errors))
        marker = folder / f".{rf.filename}.extracted"
        if rf.extract and not marker.exists():
            _safe_extract(target, folder)
            marker.write_text(rf.sha256 + "\n")
    return folder
