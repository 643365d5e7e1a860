"""IDX (MNIST / Fashion-MNIST) reader and writer, on files written in the real format."""

import gzip
import struct

import pytest
import torch

from harness.data import (
    DataFormatError,
    DataNotFoundError,
    load_mnist,
    read_idx,
    read_idx_images,
    read_idx_labels,
    write_idx,
    write_mnist,
)


def _spec_bytes(images: torch.Tensor, labels: torch.Tensor) -> tuple[bytes, bytes]:
    """Files built by hand from LeCun's spec, independent of write_idx."""
    n, h, w = images.shape
    img = struct.pack(">IIII", 0x00000803, n, h, w) + images.numpy().tobytes()
    lab = struct.pack(">II", 0x00000801, n) + labels.to(torch.uint8).numpy().tobytes()
    return img, lab


@pytest.fixture
def sample():
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8, generator=g), torch.randint(0, 10, (7,), generator=g))


def test_reads_hand_built_spec_files_raw_and_gzip(tmp_path, sample):
    images, labels = sample
    img, lab = _spec_bytes(images, labels)
    (tmp_path / "a").write_bytes(img)
    (tmp_path / "b.bin").write_bytes(gzip.compress(img))  # gzip detected by magic, not name
    (tmp_path / "c").write_bytes(lab)
    for name in ("a", "b.bin"):
        got = read_idx_images(tmp_path / name)
        assert got.dtype == torch.uint8 and got.shape == (7, 28, 28)
        assert torch.equal(got, images)
    got = read_idx_labels(tmp_path / "c")
    assert got.dtype == torch.int64 and torch.equal(got, labels)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64])
def test_general_idx_round_trip_every_type_code(tmp_path, dtype):
    t = (torch.arange(24) - 5).reshape(2, 3, 4)
    t = t.abs().to(dtype) if dtype == torch.uint8 else t.to(dtype) * (1.5 if dtype.is_floating_point else 1)
    p = write_idx(tmp_path / "x.idx.gz", t)
    assert p.read_bytes()[:2] == b"\x1f\x8b"
    got = read_idx(p)
    assert got.dtype == dtype and torch.equal(got, t)


def test_write_idx_is_big_endian(tmp_path):
    write_idx(tmp_path / "x", torch.tensor([1, 256], dtype=torch.int32), compress=False)
    assert (tmp_path / "x").read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 0])


def test_load_mnist_finds_canonical_names(tmp_path, sample):
    images, labels = sample
    write_mnist(tmp_path, "train", images, labels, compress=True)
    write_mnist(tmp_path, "test", images[:3], labels[:3], compress=False)
    train = load_mnist(tmp_path, "train")
    assert torch.equal(train.images, images) and torch.equal(train.labels, labels)
    assert not train.synthetic and str(tmp_path) in train.description
    x, y = load_mnist(tmp_path, "test", kind="fashion")
    assert x.shape == (3, 28, 28) and torch.equal(y, labels[:3])
    assert load_mnist(tmp_path, "test", kind="fashion").classes[0] == "T-shirt/top"


def test_load_mnist_torchvision_layout(tmp_path, sample):
    write_mnist(tmp_path / "FashionMNIST" / "raw", "test", *sample)
    assert len(load_mnist(tmp_path, "test", kind="fashion")) == 7


def test_missing_file_lists_paths(tmp_path, sample):
    write_mnist(tmp_path, "train", sample[0], sample[1])
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist(tmp_path, "train")


def test_truncated_file_names_file_and_sizes(tmp_path, sample):
    img, _ = _spec_bytes(*sample)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(img[:-100])
    with pytest.raises(DataFormatError) as e:
        read_idx_images(p)
    msg = str(e.value)
    assert str(p) in msg and str(len(img)) in msg and str(len(img) - 100) in msg
    assert "truncated" in msg


def test_truncated_gzip_stream(tmp_path, sample):
    img, _ = _spec_bytes(*sample)
    p = tmp_path / "imgs.gz"
    p.write_bytes(gzip.compress(img)[:-40])
    with pytest.raises(DataFormatError, match="imgs.gz.*gzip"):
        read_idx(p)


def test_wrong_magic_names_file_and_values(tmp_path, sample):
    img, lab = _spec_bytes(*sample)
    p = tmp_path / "labels-as-images"
    p.write_bytes(lab)
    with pytest.raises(DataFormatError) as e:
        read_idx_images(p)  # a labels file where images are expected
    assert str(p) in str(e.value) and "0x00000803" in str(e.value) and "0x00000801" in str(e.value)
    q = tmp_path / "garbage"
    q.write_bytes(b"\x01\x02\x08\x03" + img[4:])
    with pytest.raises(DataFormatError, match="garbage.*0x01020803"):
        read_idx(q)


def test_label_count_mismatch(tmp_path, sample):
    images, labels = sample
    write_mnist(tmp_path, "test", images, labels)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[:5], dtype=torch.uint8)
    with pytest.raises(DataFormatError, match="t10k-labels.*7 labels"):
        load_mnist(tmp_path, "test")


def test_writer_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="IDX stores"):
        write_idx(tmp_path / "x", torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="do not fit"):
        write_idx(tmp_path / "x", torch.tensor([300]), dtype=torch.uint8)


def test_planted_little_endian_file_is_caught(tmp_path, sample):
    # a wrong writer (little-endian dims, the classic IDX bug) must not read back silently
    images, _ = sample
    n, h, w = images.shape
    p = tmp_path / "le"
    p.write_bytes(struct.pack("<IIII", 0x00000803, n, h, w) + images.numpy().tobytes())
    with pytest.raises(DataFormatError, match="le: expected an IDX magic"):
        read_idx_images(p)
    q = tmp_path / "le-dims"
    q.write_bytes(struct.pack(">I", 0x00000803) + struct.pack("<III", n, h, w) + images.numpy().tobytes())
    with pytest.raises(DataFormatError, match="le-dims: expected .* bytes"):
        read_idx_images(q)
