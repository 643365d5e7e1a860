"""CIFAR-10/100 python-batch reader, on files written in the distributed layout."""

import pickle

import numpy as np
import pytest
import torch

from harness.data import (
    CIFAR10_CLASSES,
    DataFormatError,
    DataNotFoundError,
    load_cifar10,
    load_cifar100,
    read_cifar_batch,
    write_cifar10,
    write_cifar100,
    write_cifar_batch,
)


def _images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)


def test_channel_planes_follow_the_spec(tmp_path):
    # Hand-built row: 1024 red values, then 1024 green, then 1024 blue, row-major.
    row = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.arange(1024) % 256])
    p = tmp_path / "data_batch_1"
    with open(p, "wb") as f:
        pickle.dump({b"data": row[None].astype(np.uint8), b"labels": [3]}, f, protocol=2)
    images, labels = read_cifar_batch(p)
    assert images.shape == (1, 3, 32, 32) and images.dtype == torch.uint8
    assert (images[0, 0] == 10).all() and (images[0, 1] == 20).all()
    assert images[0, 2, 1, 0] == 32 and images[0, 2, 0, 5] == 5  # row-major within a plane
    assert labels.dtype == torch.int64 and labels.tolist() == [3]


def test_written_batches_use_python2_string_opcodes(tmp_path):
    p = write_cifar_batch(tmp_path / "b", _images(2), torch.tensor([1, 2]))
    raw = p.read_bytes()
    assert b"\x55\x04data" in raw  # SHORT_BINSTRING 'data', as in the Python 2 files
    assert b"numpy.core.multiarray" in raw


def test_cifar10_round_trip_with_meta(tmp_path):
    tr, te = _images(23), _images(6, 1)
    ytr, yte = torch.arange(23) % 10, torch.arange(6)
    d = write_cifar10(tmp_path, (tr, ytr), (te, yte))
    assert sorted(x.name for x in d.iterdir())[:2] == ["batches.meta", "data_batch_1"]
    train = load_cifar10(tmp_path, "train")  # parent folder works
    assert torch.equal(train.images, tr) and torch.equal(train.labels, ytr)
    assert train.classes == CIFAR10_CLASSES and not train.synthetic
    x, y = load_cifar10(d, "test")  # the folder itself works
    assert torch.equal(x, te) and torch.equal(y, yte)


def test_cifar100_fine_and_coarse(tmp_path):
    x = _images(5)
    fine, coarse = torch.tensor([0, 99, 5, 7, 42]), torch.tensor([0, 19, 1, 2, 3])
    write_cifar100(tmp_path, "train", x, fine, coarse, [f"f{i}" for i in range(100)], [f"c{i}" for i in range(20)])
    s = load_cifar100(tmp_path, "train")
    assert torch.equal(s.images, x) and torch.equal(s.labels, fine) and s.classes[99] == "f99"
    c = load_cifar100(tmp_path, "train", label="coarse")
    assert torch.equal(c.labels, coarse) and len(c.classes) == 20


def test_missing_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path)
    write_cifar10(tmp_path, (_images(10), torch.arange(10)), (_images(2), torch.arange(2)))
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataNotFoundError, match="data_batch_4"):
        load_cifar10(tmp_path)


def test_wrong_keys_name_file_and_keys(tmp_path):
    p = write_cifar_batch(
        tmp_path / "train", _images(2), {"fine_labels": torch.tensor([1, 2]), "coarse_labels": torch.tensor([0, 1])}
    )
    with pytest.raises(DataFormatError) as e:
        read_cifar_batch(p, "labels")  # CIFAR-100 batch read as CIFAR-10
    assert str(p) in str(e.value) and "fine_labels" in str(e.value)


@pytest.mark.parametrize(
    "data, found",
    [
        (np.zeros((2, 3072), np.float32), "float32"),
        (np.zeros((2, 1024), np.uint8), "(2, 1024)"),
    ],
)
def test_wrong_shapes(tmp_path, data, found):
    p = tmp_path / "data_batch_1"
    with open(p, "wb") as f:
        pickle.dump({b"data": data, b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(DataFormatError, match="data_batch_1.*uint8 array of shape"):
        read_cifar_batch(p)
    with pytest.raises(DataFormatError, match=found.replace("(", r"\(").replace(")", r"\)")):
        read_cifar_batch(p)


def test_label_count_and_range(tmp_path):
    p = tmp_path / "b"
    with open(p, "wb") as f:
        pickle.dump({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataFormatError, match="3 labels"):
        read_cifar_batch(p)
    write_cifar_batch(p, _images(2), torch.tensor([0, 10]))
    with pytest.raises(DataFormatError, match=r"labels in 0\.\.9"):
        read_cifar_batch(p, num_classes=10)


def test_truncated_pickle_and_foreign_globals(tmp_path):
    p = write_cifar_batch(tmp_path / "data_batch_1", _images(4), torch.arange(4))
    p.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(DataFormatError, match="data_batch_1.*truncated"):
        read_cifar_batch(p)
    evil = tmp_path / "evil"
    with open(evil, "wb") as f:
        pickle.dump({b"data": torch.zeros(1)}, f, protocol=2)  # references torch globals
    with pytest.raises(DataFormatError, match="evil.*reference to torch"):
        read_cifar_batch(evil)
