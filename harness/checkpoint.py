"""Crash-safe training checkpoints: atomic writes, safe loads, every RNG stored as tensors.

::

    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": capture_rng(), ...}
    atomic_save(state, run_dir / "last.pt")        # the old file stays whole until the new one is
    state = load_checkpoint(run_dir / "last.pt")    # torch.load(weights_only=True), clear refusal
    restore_rng(state["rng"])

Why each step of :func:`atomic_save` (POSIX; LWN, "Ensuring data reaches disk", J. Moyer,
2011, https://lwn.net/Articles/457667/): the new bytes go to a temporary file *in the same
folder* (a rename is atomic only within one file system); ``fsync`` puts them on the disk
before the rename can be (a crash after a rename of unsynced data can leave an empty file:
the ext4 "zero-length file" reports of 2009); ``os.replace`` swaps the name atomically (a
reader sees the old file or the new one, never half of one: Python docs, ``os.replace``);
the folder's ``fsync`` makes the rename itself durable. A crash at any moment leaves the last
good checkpoint in place, at worst beside a stale ``*.tmp`` file (:func:`stale_temps`).

Why the RNG states are tensors: ``torch.load`` defaults to ``weights_only=True`` since PyTorch
2.6 (it unpickles only tensors, numbers, strings and containers, so a checkpoint cannot run
code) and refuses NumPy's RNG state tuple, which holds an ``ndarray``. :func:`capture_rng`
stores torch's, NumPy's legacy global and Python's ``random`` states as tensors and ints.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

__all__ = [
    "TEMP_SUFFIX",
    "CheckpointError",
    "atomic_save",
    "capture_rng",
    "load_checkpoint",
    "restore_rng",
    "stale_temps",
    "torch_writer",
]

#: Suffix of the temporary files :func:`atomic_save` writes before renaming.
TEMP_SUFFIX = ".tmp"


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded: the message names the file, the problem and the fix."""


def torch_writer(obj: Any, f: IO[bytes]) -> None:
    """Default writer of :func:`atomic_save`: ``torch.save(obj, f)``."""
    torch.save(obj, f)


def _fsync_dir(folder: Path) -> None:
    # a directory opens read-only for fsync; Windows has no such call (os.O_DIRECTORY absent)
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_save(
    obj: Any,
    path: str | os.PathLike,
    *,
    fsync: bool = True,
    writer: Callable[[Any, IO[bytes]], None] = torch_writer,
    wrap: Callable[[IO[bytes]], IO[bytes]] | None = None,
) -> Path:
    """Write ``obj`` to ``path`` so that ``path`` always holds a whole checkpoint.

    Args:
        obj: what to save (``writer`` must accept it; by default anything ``torch.save`` takes).
        path: the checkpoint file; its folder must exist.
        fsync: flush the file and then the folder to the disk (False: faster, survives a
            killed process but not a power cut).
        writer: ``writer(obj, fileobj)`` writes the bytes (default ``torch.save``).
        wrap: optional wrapper of the open temporary file (tests use it to fail or stall
            in the middle of a write).

    Returns:
        The path written.

    Raises:
        FileNotFoundError: the folder does not exist. Whatever ``writer`` raises propagates
            after the temporary file is removed; ``path`` is then untouched.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {folder} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(obj, wrap(f) if wrap is not None else f)
            f.flush()  # Python's buffer -> the kernel
            if fsync:
                os.fsync(f.fileno())  # the kernel's page cache -> the disk
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        _fsync_dir(folder)  # the rename (a change to the folder) -> the disk
    return path


def stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Temporary files left by writers that were killed mid-write (safe to delete)."""
    return sorted(Path(folder).glob(f".*{TEMP_SUFFIX}"))


def load_checkpoint(
    path: str | os.PathLike, *, map_location: str | torch.device | None = "cpu", required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with errors that say what to do.

    Args:
        path: a file written by :func:`atomic_save` (or ``torch.save``).
        map_location: where tensors land (default CPU).
        required: top-level keys the checkpoint must have.

    Returns:
        The checkpoint dict.

    Raises:
        CheckpointError: missing file, truncated or corrupt file, an object the safe loader
            refuses (a class instance, an ndarray: the message names it), not a dict, or a
            missing key.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; save one first or pass the right path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        culprit = next((ln.strip() for ln in first if "GLOBAL" in ln or "Unsupported" in ln), first[0] if first else "")
        raise CheckpointError(
            f"checkpoint {path} holds an object the safe loader (weights_only=True) refuses: {culprit}; "
            "save only tensors, numbers, strings, lists and dicts (see harness.checkpoint.capture_rng), "
            "or, for a file you trust, allow the type with torch.serialization.add_safe_globals"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(e).__name__}: {str(e)[:120]}); "
            "load the previous checkpoint; writes through atomic_save never leave a partial file"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict of states")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; it has {sorted(state)}")
    return state


# -- RNG states as tensors ----------------------------------------------------------------
def capture_rng(*, torch_rng: bool = True, numpy_rng: bool = True, python_rng: bool = True) -> dict[str, Any]:
    """The global RNG states as tensors and ints (loadable with ``weights_only=True``).

    Returns:
        ``{"torch": uint8 tensor, "cuda": [uint8 tensor per device], "numpy": {...},
        "python": {...}}``, with the parts not asked for left out. NumPy's legacy MT19937 state
        is ``keys`` (624,) int64, ``pos``, ``has_gauss`` and ``cached_gaussian``; Python's is
        ``version``, ``internal`` (625,) int64 (32-bit words) and ``gauss_next``.
    """
    out: dict[str, Any] = {}
    if torch_rng:
        out["torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            out["cuda"] = torch.cuda.get_rng_state_all()
    if numpy_rng:
        kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
        out["numpy"] = {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),  # uint32 words, widened: no sign loss
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    if python_rng:
        version, internal, gauss_next = random.getstate()
        out["python"] = {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,  # None or a float: both load with weights_only
        }
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Set the global RNGs from :func:`capture_rng`'s output (parts absent are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        s = state["numpy"]
        keys = s["keys"].numpy().astype(np.uint32)
        np.random.set_state((s["kind"], keys, s["pos"], s["has_gauss"], s["cached_gaussian"]))
    if "python" in state:
        s = state["python"]
        random.setstate((s["version"], tuple(int(v) for v in s["internal"].tolist()), s["gauss_next"]))
