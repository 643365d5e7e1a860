"""Writes that fail or stall half-way, the in-place writer they expose, and the file system type.

``FailingFile`` and ``StallingFile`` wrap the open file :func:`harness.checkpoint.atomic_save`
writes to (its ``wrap`` argument): the first raises ``OSError`` (a full disk) after a number
of bytes, the second signals an event and sleeps there until its process is killed.
:func:`fail_mid_write` and :func:`kill_mid_write` run a saver into each.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from harness.checkpoint import CheckpointError, stale_temps, torch_writer


class _Wrapped:
    """Passes everything to the wrapped file; counts the bytes written."""

    def __init__(self, f: IO[bytes], after_bytes: int):
        if after_bytes <= 0:
            raise ValueError(f"after_bytes must be > 0, got {after_bytes}")
        self._f, self.after_bytes, self.written = f, after_bytes, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def _write_part(self, data: bytes) -> int:
        """Write up to the limit; returns the bytes written of ``data``."""
        room = max(self.after_bytes - self.written, 0)
        part = bytes(memoryview(data)[:room])
        self._f.write(part)
        self._f.flush()  # the half-written bytes reach the file, as a real interrupted write's do
        self.written += len(part)
        return len(part)


class FailingFile(_Wrapped):
    """Raises ``OSError(ENOSPC)`` once ``after_bytes`` bytes have been written."""

    def write(self, data: bytes) -> int:
        n = self._write_part(data)
        if n < len(memoryview(data).cast("B")):
            raise OSError(28, "No space left on device (simulated mid-write)")
        return n


class StallingFile(_Wrapped):
    """After ``after_bytes`` bytes, sets ``midway`` and sleeps (the parent then kills the process)."""

    def __init__(self, f: IO[bytes], after_bytes: int, midway: Any):
        super().__init__(f, after_bytes)
        self.midway = midway

    def write(self, data: bytes) -> int:
        n = self._write_part(data)
        if n < len(memoryview(data).cast("B")):
            self.midway.set()
            time.sleep(3600)  # never returns in the check: SIGKILL comes first
        return n


def fail_mid_write(saver: Callable[..., Any], obj: Any, path: Path, after_bytes: int) -> None:
    """``saver(obj, path, wrap=...)`` whose file raises ``OSError`` after ``after_bytes`` bytes;
    the error (or torch's zip writer's ``RuntimeError`` for it) is swallowed: the caller looks at
    what is left at ``path``."""
    try:
        saver(obj, path, wrap=lambda f: FailingFile(f, after_bytes=after_bytes))
    except (OSError, RuntimeError):  # torch's zip writer reports a failed write as RuntimeError
        pass


def kill_mid_write(saver: Callable[..., Any], obj: Any, path: Path, after_bytes: int) -> tuple[bool, int | None] | None:
    """Run ``saver(obj, path, wrap=...)`` in a forked child, SIGKILL it once ``after_bytes`` bytes
    are written (waiting up to 60 s for that), and reap it.

    Returns ``(reached the middle, the child's exit code: -SIGKILL when killed)``, or None where
    the fork start method is missing (not POSIX). ``obj``'s tensors are copied to the CPU first: a
    forked child must not touch CUDA. The child inherits ``saver`` as it is (a mutant's included).
    """
    if "fork" not in mp.get_all_start_methods():
        return None
    obj = torch.utils._pytree.tree_map(lambda v: v.cpu() if torch.is_tensor(v) else v, obj)
    ctx = mp.get_context("fork")
    midway = ctx.Event()
    child = ctx.Process(target=saver, args=(obj, path), kwargs={"wrap": lambda f: StallingFile(f, after_bytes, midway)})
    child.start()
    try:
        reached = midway.wait(60.0)
    finally:
        assert child.pid is not None  # started
        os.kill(child.pid, signal.SIGKILL)
        child.join(10.0)
    return reached, child.exitcode


def refusal(loader: Callable[[Path], Any], obj: Any, path: Path) -> str | None:
    """``torch.save(obj, path)``, then ``loader(path)``: the ``CheckpointError`` message it raised,
    or None when it loaded the file (the refusal a safe loader owes an unexpected object)."""
    torch.save(obj, path)
    try:
        loader(path)
    except CheckpointError as e:
        return str(e)
    return None


def unsafe_states() -> dict[str, dict[str, Any]]:
    """Checkpoints a safe loader must refuse, by what they hold: NumPy's legacy RNG state (the classic:
    ``np.random.get_state()`` is a tuple holding an ndarray) and a class instance (``random.Random``)."""
    return {"numpy RNG tuple": {"rng": np.random.get_state()}, "class instance": {"data": random.Random(0)}}


def truncated_copy(path: Path, dest: Path, keep_bytes: int) -> Path:
    """``dest`` holding the first ``keep_bytes`` bytes of the file at ``path`` (a write cut short); returns ``dest``."""
    dest.write_bytes(path.read_bytes()[:keep_bytes])
    return dest


def clear_stale(folder: Path) -> int:
    """Remove the temporary files a killed writer left in ``folder``
    (:func:`harness.checkpoint.stale_temps`); returns how many there were."""
    left = stale_temps(folder)
    for f in left:
        f.unlink()
    return len(left)


def write_in_place(
    obj: Any,
    path: str | os.PathLike,
    *,
    fsync: bool = True,
    writer: Callable[[Any, IO[bytes]], None] = torch_writer,
    wrap: Callable[[IO[bytes]], IO[bytes]] | None = None,
) -> Path:
    """The wrong way (a mutant): truncate the checkpoint and write over it."""
    path = Path(path)
    with open(path, "wb") as f:
        writer(obj, wrap(f) if wrap is not None else f)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    return path


def write_in_place_restoring(obj: Any, path: str | os.PathLike, **kw: Any) -> Path:
    """Also wrong (a mutant): write in place, putting the old bytes back if the write raises.

    Survives an exception, not a kill: a SIGKILL runs no ``except`` clause.
    """
    path = Path(path)
    old = path.read_bytes() if path.exists() else None
    try:
        return write_in_place(obj, path, **kw)
    except BaseException:
        if old is not None:
            path.write_bytes(old)
        raise


def unsafe_load(path: str | os.PathLike, **kw: Any) -> Any:
    """Also wrong (a mutant): ``torch.load(weights_only=False)``, the pre-2.6 default that runs any pickle."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def filesystem_of(path: str | os.PathLike) -> str:
    """The file system type holding ``path`` (``ext4``, ``tmpfs``, ...) from /proc/mounts, or ``unknown``."""
    p = str(Path(path).resolve())
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and (p == fields[1] or p.startswith(fields[1].rstrip("/") + "/")):
                    if len(fields[1]) > len(best):
                        best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind
