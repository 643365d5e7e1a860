"""llm.c / nanoGPT token shards: format, memmap reading, batching."""

import numpy as np
import pytest
import torch

from harness.data import DataFormatError, TokenShardLoader, random_batch, read_shard, write_shard


def _llmc_bytes(tokens, magic=20240520, version=1, count=None, dtype=np.uint16):
    """A shard built by hand as llm.c's write_datafile does, independent of write_shard."""
    h = np.zeros(256, dtype=np.int32)
    h[0], h[1], h[2] = magic, version, len(tokens) if count is None else count
    return h.tobytes() + np.asarray(tokens, dtype=dtype).tobytes()


def test_reads_hand_built_llmc_shard_as_memmap(tmp_path):
    toks = [0, 1, 50256, 65535, 7]
    p = tmp_path / "s.bin"
    p.write_bytes(_llmc_bytes(toks))
    got = read_shard(p)
    assert isinstance(got, np.memmap) and got.dtype == np.uint16
    assert got.tolist() == toks
    q = tmp_path / "l3.bin"
    q.write_bytes(_llmc_bytes([70000, 1], magic=20240801, version=7, dtype=np.uint32))
    assert read_shard(q).tolist() == [70000, 1]


def test_write_matches_llmc_bytes_and_headerless(tmp_path):
    toks = np.arange(1000) * 60
    assert write_shard(tmp_path / "a.bin", toks).read_bytes() == _llmc_bytes(toks)
    p = write_shard(tmp_path / "nano.bin", torch.tensor([3, 2, 1]), header=False)
    assert p.stat().st_size == 6
    assert read_shard(p, headerless=True).tolist() == [3, 2, 1]
    with pytest.raises(ValueError, match="do not fit uint16"):
        write_shard(tmp_path / "x.bin", [65536])


def test_bad_magic_version_and_truncation_name_the_file(tmp_path):
    p = tmp_path / "bad.bin"
    p.write_bytes(_llmc_bytes([1, 2], magic=12345))
    with pytest.raises(DataFormatError, match=r"bad.bin.*20240520.*found 12345"):
        read_shard(p)
    p.write_bytes(_llmc_bytes([1, 2], version=2))
    with pytest.raises(DataFormatError, match=r"bad.bin.*version 1.*found 2"):
        read_shard(p)
    p.write_bytes(_llmc_bytes([1, 2, 3])[:-2])
    with pytest.raises(DataFormatError, match=r"bad.bin.*1030 bytes for 3.*1028 bytes \(truncated"):
        read_shard(p)
    p.write_bytes(b"\x00" * 10)
    with pytest.raises(DataFormatError, match="bad.bin.*1024-byte llm.c header"):
        read_shard(p)


def test_random_batch_targets_are_shifted_and_seeded(tmp_path):
    data = read_shard(write_shard(tmp_path / "a.bin", np.arange(500)))
    x, y = random_batch(data, 4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(y, x + 1)  # tokens are 0..499, so next token = value + 1
    x2, _ = random_batch(data, 4, 16, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)


def test_sequential_loader_ranks_and_shards(tmp_path):
    write_shard(tmp_path / "s0.bin", np.arange(0, 50))
    write_shard(tmp_path / "s1.bin", np.arange(1000, 1050))
    B, T = 2, 4
    r0 = TokenShardLoader(tmp_path, B, T, rank=0, world_size=2)
    r1 = TokenShardLoader(tmp_path, B, T, rank=1, world_size=2)
    x0, y0 = r0.next_batch()
    x1, _ = r1.next_batch()
    assert x0.flatten().tolist() == list(range(0, 8)) and torch.equal(y0, x0 + 1)
    assert x1.flatten().tolist() == list(range(8, 16))  # disjoint slice for rank 1
    r0.next_batch()  # tokens 16..23
    assert r0.next_batch()[0].flatten().tolist() == list(range(32, 40))
    # the next step would need tokens 48..64 (+1) of a 50-token shard: next shard
    assert r0.next_batch()[0][0, 0].item() == 1000
    with pytest.raises(ValueError, match="needs 65"):
        TokenShardLoader(tmp_path, 4, 8, world_size=2)
