"""Data-dir resolution, and download/fetch logic on local file:// URLs (no network)."""

import hashlib
import io
import os
import tarfile

import pytest
import torch

from harness.data import (
    ENV_VAR,
    REMOTE,
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    data_root,
    download,
    fetch,
    load_mnist,
    resolve,
    write_mnist,
)
from harness.data import sources as sources_mod


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def _mnist_dir(root):
    x = torch.zeros(2, 28, 28, dtype=torch.uint8)
    y = torch.tensor([1, 2])
    write_mnist(root, "train", x, y)
    write_mnist(root, "test", x, y)
    return root


def test_precedence_explicit_over_env(tmp_path, monkeypatch):
    assert data_root() is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"


def test_fallbacks_without_data_dir():
    assert str(resolve("mnist")).startswith("embedded real data from scikit-learn")
    src = resolve("cifar10")
    assert src.kind == "synthetic" and src.synthetic and src.path is None
    assert str(src).startswith("synthetic: ")
    assert resolve("corpus").kind == "embedded" and resolve("iris").kind == "embedded"
    with pytest.raises(ValueError, match="unknown data set"):
        resolve("imagenet")


def test_real_files_found_in_conventional_subfolder(tmp_path, monkeypatch):
    _mnist_dir(tmp_path / "mnist")
    src = resolve("mnist", tmp_path)
    assert src.kind == "files" and src.path == (tmp_path / "mnist").resolve()
    assert str(src) == f"real files at {src.path}"
    assert len(load_mnist(src.path, "train")) == 2
    monkeypatch.setenv(ENV_VAR, str(tmp_path))  # the environment variable works too
    assert resolve("mnist").kind == "files"


def test_explicit_dir_without_files_raises_env_dir_falls_back(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match="cifar10 files.*drills data fetch cifar10"):
        resolve("cifar10", tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    src = resolve("cifar10")
    assert src.kind == "synthetic" and f"{ENV_VAR}={tmp_path} has no cifar10 files" in str(src)


def _file_url(path):
    return path.resolve().as_uri()


def test_download_verifies_and_writes_atomically(tmp_path):
    payload = os.urandom(3000)
    src = tmp_path / "remote.bin"
    src.write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "out" / "file.bin"
    seen = []
    download(_file_url(src), dest, good, len(payload), progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == payload and seen[-1] == (3000, 3000)
    # a wrong checksum keeps the existing good file and leaves no partial file behind
    src.write_bytes(b"tampered" + payload)
    dest.write_bytes(b"old good file")
    with pytest.raises(ChecksumError, match="remote.bin.*sha256 0+"):
        download(_file_url(src), dest, "0" * 64)
    assert dest.read_bytes() == b"old good file"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]
    with pytest.raises(ChecksumError, match="3000 bytes"):
        download(_file_url(src), tmp_path / "out" / "sized.bin", hashlib.sha256(src.read_bytes()).hexdigest(), 3000)
    assert not (tmp_path / "out" / "sized.bin").exists()
    assert issubclass(ChecksumError, DataFormatError)


def test_download_skips_file_that_already_verifies(tmp_path):
    dest = tmp_path / "f"
    dest.write_bytes(b"abc")
    # the URL does not exist: no download is attempted when the hash already matches
    download(_file_url(tmp_path / "missing"), dest, hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(OSError):
        download(_file_url(tmp_path / "missing"), tmp_path / "g", "0" * 64)


def test_fetch_rejects_mirror_with_wrong_bytes(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for rf in REMOTE["mnist"][1]:
        (mirror / rf.filename).write_bytes(b"not the real file")
    dest = tmp_path / "data"
    with pytest.raises(OSError, match="no mirror gave a verified train-images-idx3-ubyte.gz"):
        fetch("mnist", dest, mirrors=(_file_url(mirror),))
    assert [p.name for p in (dest / "mnist").iterdir()] == []
    with pytest.raises(ValueError, match="fetchable"):
        fetch("iris", dest)


def test_fetch_success_path_with_patched_checksums(tmp_path, monkeypatch):
    # A tiny archive in the IMDB layout, served from file://, with its own checksum.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, text in [
            ("aclImdb/train/pos/0_9.txt", b"good"),
            ("aclImdb/train/neg/1_1.txt", b"bad"),
            ("aclImdb/test/pos/2_8.txt", b"fine"),
            ("aclImdb/test/neg/3_2.txt", b"meh"),
        ]:
            info = tarfile.TarInfo(rel)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    data = buf.getvalue()
    (mirror / "aclImdb_v1.tar.gz").write_bytes(data)
    rf = sources_mod.RemoteFile("aclImdb_v1.tar.gz", hashlib.sha256(data).hexdigest(), len(data), extract=True)
    monkeypatch.setitem(sources_mod.REMOTE, "imdb", (("unused",), (rf,)))
    folder = fetch("imdb", tmp_path / "data", mirrors=(_file_url(mirror),))
    assert (folder / "aclImdb" / "train" / "pos" / "0_9.txt").read_text() == "good"
    assert resolve("imdb", tmp_path / "data").path == (folder / "aclImdb").resolve()
    fetch("imdb", tmp_path / "data", mirrors=(_file_url(mirror),))  # second call: no-op


def test_extract_refuses_path_traversal(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "dest").mkdir()
    with pytest.raises(DataFormatError, match="unsafe member '../escape.txt'"):
        sources_mod._safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "dest").iterdir()) == []
