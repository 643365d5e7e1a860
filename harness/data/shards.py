"""Token shards in the llm.c / nanoGPT ``.bin`` format, read through ``numpy.memmap``.

Format source: A. Karpathy, llm.c, ``dev/data/data_common.py`` (``write_datafile``) and
``llmc/dataloader.h``: a header of 256 little-endian int32 (``header[0]`` magic,
``header[1]`` version, ``header[2]`` number of tokens, the rest zero), then the tokens:

* GPT-2 tokens: magic 20240520, version 1, uint16 tokens (vocabulary 50,257 < 2**16);
* Llama-3 tokens: magic 20240801, version 7, uint32 tokens.

nanoGPT's ``data/*/prepare.py`` writes the same uint16 tokens with no header
(``headerless=True`` here). Batching follows llm.c's ``DataLoader`` (sequential windows,
each rank a disjoint slice, next shard when one runs out) and nanoGPT's ``get_batch``
(random windows).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import DataFormatError, DataNotFoundError

HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
#: magic -> (version, token dtype, name), from llm.c's HEADERS_INFO
LLMC_FORMATS: dict[int, tuple[int, type, str]] = {
    20240520: (1, np.uint16, "gpt-2"),
    20240801: (7, np.uint32, "llama-3"),
}
_BY_NAME = {v[2]: (magic, v[0], v[1]) for magic, v in LLMC_FORMATS.items()}


def write_shard(
    path: str | os.PathLike,
    tokens: torch.Tensor | np.ndarray | Sequence[int],
    *,
    model: str = "gpt-2",
    header: bool = True,
) -> Path:
    """Write tokens as an llm.c shard (or a bare nanoGPT uint16 file with ``header=False``).

    Args:
        tokens: 1-D integer ids; each must fit the token dtype (uint16 for "gpt-2").
        model: "gpt-2" (magic 20240520, uint16) or "llama-3" (magic 20240801, uint32).
    Returns the path. Raises ValueError for ids out of range or a non-1-D input.
    """
    if model not in _BY_NAME:
        raise ValueError(f"write_shard: model must be one of {sorted(_BY_NAME)}, got {model!r}")
    magic, version, dtype = _BY_NAME[model]
    if not header and dtype is not np.uint16:
        raise ValueError("write_shard: headerless (nanoGPT) files hold uint16 tokens only")
    arr = np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"write_shard: tokens must be 1-D, got shape {arr.shape}")
    hi = np.iinfo(dtype).max
    if arr.size and (arr.min() < 0 or arr.max() > hi):
        raise ValueError(f"write_shard: token ids {arr.min()}..{arr.max()} do not fit {np.dtype(dtype).name} (0..{hi})")
    if arr.size >= 2**31:
        raise ValueError("write_shard: llm.c stores the count as int32; split the shard")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        if header:
            h = np.zeros(HEADER_INTS, dtype="<i4")
            h[0], h[1], h[2] = magic, version, arr.size
            f.write(h.tobytes())
        f.write(arr.astype(np.dtype(dtype).newbyteorder("<")).tobytes())
    return path


def read_shard(path: str | os.PathLike, *, headerless: bool = False) -> np.ndarray:
    """Memory-map a shard's tokens without reading them.

    Returns a read-only 1-D ``numpy.memmap`` of uint16 (GPT-2, nanoGPT) or uint32
    (Llama-3) tokens (numpy because torch has no uint16 memmap; slices convert with
    ``.astype(np.int64)``). Raises DataNotFoundError if absent, DataFormatError naming the
    file for an unknown magic, a wrong version, or a size that disagrees with the header
    (truncated shard).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"token shard {path.name}", [str(path)])
    size = path.stat().st_size
    if headerless:
        if size % 2:
            raise DataFormatError(path, "an even number of bytes (uint16 tokens)", f"{size} bytes")
        return np.memmap(path, dtype="<u2", mode="r") if size else np.empty(0, np.uint16)
    if size < HEADER_BYTES:
        raise DataFormatError(
            path,
            f"a {HEADER_BYTES}-byte llm.c header",
            f"{size} bytes",
            "Headerless nanoGPT files need headerless=True",
        )
    h = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    magic, version, count = int(h[0]), int(h[1]), int(h[2])
    if magic not in LLMC_FORMATS:
        raise DataFormatError(
            path,
            "llm.c magic " + " or ".join(f"{m} ({v[2]})" for m, v in LLMC_FORMATS.items()),
            str(magic),
            "Headerless nanoGPT files need headerless=True",
        )
    want_version, dtype, name = LLMC_FORMATS[magic]
    if version != want_version:
        raise DataFormatError(path, f"version {want_version} for {name} shards", str(version))
    itemsize = np.dtype(dtype).itemsize
    want = HEADER_BYTES + count * itemsize
    if size != want:
        raise DataFormatError(
            path,
            f"{want} bytes for {count} {name} tokens",
            f"{size} bytes" + (" (truncated shard)" if size < want else ""),
        )
    if count == 0:
        return np.empty(0, dtype)
    return np.memmap(path, dtype=np.dtype(dtype).newbyteorder("<"), mode="r", offset=HEADER_BYTES, shape=(count,))


def random_batch(
    tokens: np.ndarray, batch_size: int, seq_len: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """nanoGPT's ``get_batch``: ``batch_size`` windows at random offsets.

    Returns (x, y), int64 (B, T) each, with ``y[:, t] == x[:, t + 1]`` shifted by one
    token in the source. Raises ValueError when the data is shorter than seq_len + 1.
    """
    if len(tokens) < seq_len + 1:
        raise ValueError(f"random_batch: {len(tokens)} tokens cannot give a window of {seq_len} + 1")
    starts = torch.randint(len(tokens) - seq_len, (batch_size,), generator=generator)
    x = np.stack([tokens[i : i + seq_len] for i in starts.tolist()]).astype(np.int64)
    y = np.stack([tokens[i + 1 : i + 1 + seq_len] for i in starts.tolist()]).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)  # (B, T) each


class TokenShardLoader:
    """Sequential (B, T) batches over a list of shards, as llm.c's ``DataLoader``.

    Rank ``r`` of ``world_size`` reads the window starting at ``B*T*r`` and advances by
    ``B*T*world_size``, so ranks read disjoint tokens; when the next step (all ranks'
    windows) would run past the shard end, every rank moves to the next shard (wrapping to
    the first), dropping the tail.

    Args:
        paths: shard files (sorted order is used), or a directory whose ``*.bin`` are used.
        batch_size, seq_len: B and T.
        headerless: nanoGPT files without the llm.c header.
    Raises DataNotFoundError for no shards and ValueError when a shard holds fewer than
    ``B*T*world_size + 1`` tokens (it could never yield a batch).
    """

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        batch_size: int,
        seq_len: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        headerless: bool = False,
    ):
        if isinstance(paths, (str, os.PathLike)) and Path(paths).is_dir():
            files = sorted(Path(paths).glob("*.bin"))
        elif isinstance(paths, (str, os.PathLike)):
            files = [Path(paths)]
        else:
            files = sorted(Path(p) for p in paths)
        if not files:
            raise DataNotFoundError("token shards (*.bin)", [str(paths)])
        if not 0 <= rank < world_size:
            raise ValueError(f"TokenShardLoader: rank {rank} not in 0..{world_size - 1}")
        self.files = files
        self.B, self.T, self.rank, self.world_size = batch_size, seq_len, rank, world_size
        self.headerless = headerless
        need = batch_size * seq_len * world_size + 1
        for f in files:
            n = len(read_shard(f, headerless=headerless))
            if n < need:
                raise ValueError(
                    f"{f}: {n} tokens, but one step of B={batch_size}, T={seq_len} on {world_size} rank(s) needs {need}"
                )
        self.reset()

    def reset(self) -> None:
        """Back to the first shard, this rank's first window."""
        self.shard = 0
        self.tokens = read_shard(self.files[0], headerless=self.headerless)
        self.position = self.B * self.T * self.rank

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) int64 (B, T) each; y is x shifted one token ahead."""
        B, T = self.B, self.T
        buf = np.asarray(self.tokens[self.position : self.position + B * T + 1], dtype=np.int64)
        x = torch.from_numpy(buf[:-1].copy()).view(B, T)  # (B, T)
        y = torch.from_numpy(buf[1:].copy()).view(B, T)  # (B, T)
        self.position += B * T * self.world_size
        # as llm.c: all ranks change shard together, when the next whole step (every
        # rank's window, from rank 0's start) would not fit
        if self.position - B * T * self.rank + B * T * self.world_size + 1 > len(self.tokens):
            self.shard = (self.shard + 1) % len(self.files)
            self.tokens = read_shard(self.files[self.shard], headerless=self.headerless)
            self.position = B * T * self.rank
        return x, y
