"""Launch a function on several processes the way ``torchrun`` does.

:func:`launch` starts ``world_size`` fresh Python interpreters on this machine (one per
rank, like ``torchrun --standalone --nproc-per-node=W``), each with the environment
``torch.distributed``'s ``env://`` rendezvous reads:

========================  ==========================================================
``MASTER_ADDR``           ``127.0.0.1`` (single node, loopback)
``MASTER_PORT``           a free TCP port picked by the parent
``RANK``/``LOCAL_RANK``   0 .. world_size-1 (one node: both the same)
``WORLD_SIZE``            and ``LOCAL_WORLD_SIZE``: world_size
``OMP_NUM_THREADS``       1, as torchrun sets it: W ranks x all cores each would
                          oversubscribe the CPU many times over
========================  ==========================================================

Each rank unpickles ``fn`` (so ``fn`` must be importable *by reference*: a module-level
function of an importable module; task files qualify as ``drills_tasks.<area>.<slug>``,
and the parent's ``sys.path`` extras travel in ``PYTHONPATH`` so test modules do too),
optionally joins a process group (``backend="auto"``: NCCL when every rank gets its own
GPU, else gloo), calls ``fn(*args, **kwargs)`` and writes the return value to a file
that the parent reads back. :func:`launch` returns the list of values, index = rank.

Failures are loud and name the rank: an exception in rank r raises :class:`LaunchError`
with r's traceback; a rank that dies (signal, ``os._exit``) or a job that outlives
``timeout_s`` kills every remaining rank and raises (:class:`LaunchTimeout` for the
latter) with the tail of each unfinished rank's output. Workers are spawned as new
interpreters, never forked, so CUDA state is never inherited.
"""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

#: Backends :func:`launch` accepts; None means ``fn`` sets up torch.distributed itself.
BACKENDS = ("auto", "gloo", "nccl", None)
_CHILD = "import sys; from harness.launch import _child_main; sys.exit(_child_main(sys.argv[1]))"


class LaunchError(RuntimeError):
    """A rank failed. ``rank`` is the first rank that failed (None when unknown)."""

    def __init__(self, message: str, rank: int | None = None):
        super().__init__(message)
        self.rank = rank


class LaunchTimeout(LaunchError):
    """The job ran past ``timeout_s``; every rank was killed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_backend(backend: str | None, world_size: int) -> str | None:
    """``auto`` -> ``nccl`` when NCCL is built and there are >= world_size GPUs, else ``gloo``.

    Raises:
        ValueError: an unknown backend, or nccl asked for without enough GPUs.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: auto, gloo, nccl or None")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    nccl = torch.distributed.is_available() and torch.distributed.is_nccl_available()
    if backend == "auto":
        return "nccl" if nccl and gpus >= world_size else "gloo"
    if backend == "nccl" and (not nccl or gpus < world_size):
        raise ValueError(
            f"backend nccl needs NCCL and one GPU per rank: world_size={world_size}, GPUs={gpus}; use backend='gloo'"
        )
    return backend


def _pythonpath() -> str:
    """The parent's sys.path entries outside the interpreter's own (project, test dirs)."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    extra = []
    for p in sys.path:
        rp = os.path.realpath(p or os.getcwd())
        if os.path.isdir(rp) and not any(rp.startswith(pre + os.sep) or rp == pre for pre in prefixes):
            extra.append(rp)
    # the folder holding the harness package, so `import harness` works from any cwd
    extra.append(str(Path(__file__).resolve().parent.parent))
    old = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(dict.fromkeys(extra + ([old] if old else [])))


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return text[-chars:].strip()


def launch(
    fn: Callable[..., Any],
    world_size: int,
    *,
    args: tuple = (),
    kwargs: dict | None = None,
    backend: str | None = "auto",
    timeout_s: float = 120.0,
    env: dict[str, str] | None = None,
    omp_threads: int = 1,
    port_retries: int = 2,
) -> list[Any]:
    """Run ``fn(*args, **kwargs)`` on ``world_size`` processes; return each rank's value.

    Args:
        fn: a module-level function (pickled by reference); it may read RANK, WORLD_SIZE,
            LOCAL_RANK from the environment or ``torch.distributed``.
        world_size: number of ranks, >= 1.
        args, kwargs: picklable arguments, the same for every rank.
        backend: ``auto``/``gloo``/``nccl``: each rank joins the default process group
            (env:// rendezvous) before ``fn`` and leaves it after; with NCCL, rank r uses
            ``cuda:r``. None: ``fn`` initialises torch.distributed itself.
        timeout_s: wall-clock limit for the whole job (start-up included), seconds; it is
            also the process group's collective timeout.
        env: extra environment variables for every rank.
        omp_threads: OMP_NUM_THREADS per rank (torchrun's default is 1).
        port_retries: new-port attempts when rank 0 finds MASTER_PORT taken (a race
            with another program between picking the port and binding it).

    Returns:
        ``[value of rank 0, value of rank 1, ...]``; values must be picklable
        (return CPU tensors: the parent may have no GPU context).

    Raises:
        ValueError: world_size < 1, an unknown backend, ``fn`` not picklable by reference.
        LaunchError: a rank raised or died; the message names it and shows its traceback.
        LaunchTimeout: the job outlived ``timeout_s``.
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an int >= 1, got {world_size!r}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s}")
    backend = resolve_backend(backend, world_size)
    try:
        job = pickle.dumps((fn, tuple(args), dict(kwargs or {}), backend, timeout_s))
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise ValueError(
            f"launch: {getattr(fn, '__qualname__', fn)!r} or its arguments cannot be pickled "
            f"({e}); workers import fn by reference, so define it at module level of an "
            "importable module"
        ) from None
    for attempt in range(port_retries + 1):
        workdir = Path(tempfile.mkdtemp(prefix="drills-launch-"))
        try:
            (workdir / "job.pkl").write_bytes(job)
            try:
                return _run(workdir, world_size, timeout_s, env or {}, omp_threads)
            except LaunchError as e:
                in_use = "address already in use" in str(e).lower() or "EADDRINUSE" in str(e)
                if not in_use or attempt == port_retries:
                    raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    raise AssertionError("unreachable")


def _run(workdir: Path, world_size: int, timeout_s: float, extra_env: dict[str, str], omp_threads: int) -> list[Any]:
    port = free_port()
    base = {**os.environ, **extra_env, "PYTHONPATH": _pythonpath()}
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for rank in range(world_size):
            env = {
                **base,
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(world_size),
                "LOCAL_WORLD_SIZE": str(world_size),
                "GROUP_RANK": "0",
                "OMP_NUM_THREADS": str(omp_threads),
            }
            log = open(workdir / f"rank{rank}.log", "wb")  # noqa: SIM115 - closed in finally
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _CHILD, str(workdir)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + timeout_s
        failed: int | None = None
        seen_dead: dict[int, float] = {}  # rank -> wall time its non-zero exit was seen
        while True:
            codes = [p.poll() for p in procs]
            for r, c in enumerate(codes):
                if c not in (None, 0) and r not in seen_dead:
                    seen_dead[r] = time.time()
            if seen_dead and failed is None:
                failed = -1
                # the others may wait forever in a collective with the dead rank
                deadline = min(deadline, time.monotonic() + 3.0)
            if all(c is not None for c in codes):
                break
            if time.monotonic() > deadline:
                if failed is not None:
                    break
                running = [r for r, c in enumerate(codes) if c is None]
                _kill(procs)
                tails = "\n".join(f"--- rank {r} output ---\n{_tail(workdir / f'rank{r}.log')}" for r in running)
                raise LaunchTimeout(
                    f"launch timed out after {timeout_s:.0f} s with rank(s) {running} still running "
                    f"(world_size={world_size}); all ranks were killed\n{tails}",
                    rank=running[0],
                )
            time.sleep(0.02)
        if failed is not None:
            failed = _first_failure(workdir, seen_dead)
            message = _describe_failure(workdir, failed, procs, world_size)  # before the kill: who died by itself
            _kill(procs)
            raise LaunchError(message, rank=failed)
        results = []
        for rank in range(world_size):
            path = workdir / f"rank{rank}.result.pkl"
            if not path.exists():
                raise LaunchError(
                    f"rank {rank} exited with code 0 but wrote no result (did fn call sys.exit?)\n"
                    f"{_tail(workdir / f'rank{rank}.log')}",
                    rank=rank,
                )
            results.append(pickle.loads(path.read_bytes()))
        return results
    finally:
        _kill(procs)
        for log in logs:
            log.close()


def _first_failure(workdir: Path, seen_dead: dict[int, float]) -> int:
    """The rank that failed first: by the time its traceback was written, else its exit was seen.

    The order matters for the message: when rank 1 raises, rank 0 soon fails too
    ("Connection closed by peer"), and the root cause is rank 1's.
    """

    def when(rank: int) -> float:
        try:
            return (workdir / f"rank{rank}.error").stat().st_mtime
        except FileNotFoundError:
            return seen_dead[rank]

    return min(seen_dead, key=lambda r: (when(r), r))


def _describe_failure(workdir: Path, rank: int, procs: list[subprocess.Popen], world_size: int) -> str:
    code = procs[rank].returncode
    err = _tail(workdir / f"rank{rank}.error")
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    head = f"rank {rank} of {world_size} failed ({how})"
    body = (
        f":\n{err}"
        if err
        else " without a Python traceback (crash, os._exit or out of memory); its output:\n"
        + _tail(workdir / f"rank{rank}.log")
    )
    others = []
    for r, p in enumerate(procs):
        if r != rank and p.poll() not in (None, 0):
            last = (_tail(workdir / f"rank{r}.error", 400).splitlines() or ["no traceback"])[-1]
            others.append(f"rank {r}: {last}")
    if others:
        body += "\n(also failed, possibly as a consequence: " + "; ".join(others) + ")"
    return head + body


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _child_main(workdir_str: str) -> int:
    """Entry point of one rank (run as ``python -c`` by :func:`launch`)."""
    import traceback
    from datetime import timedelta

    workdir = Path(workdir_str)
    rank = int(os.environ["RANK"])
    dist = torch.distributed
    backend = None
    try:
        # importing the registry installs the finder for task modules (drills_tasks.<area>.<slug>)
        import harness.registry  # noqa: F401

        fn, args, kwargs, backend, timeout_s = pickle.loads((workdir / "job.pkl").read_bytes())
        if backend is not None:
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        value = fn(*args, **kwargs)
        tmp = workdir / f"rank{rank}.result.tmp"
        tmp.write_bytes(pickle.dumps(value))
        tmp.replace(workdir / f"rank{rank}.result.pkl")
        return 0
    except BaseException:
        # written before the process group goes down: leaving it makes the peers fail
        # too, and the parent names whoever wrote a traceback first as the cause
        (workdir / f"rank{rank}.error").write_text(traceback.format_exc())
        return 1
    finally:
        if backend is not None and dist.is_initialized():
            dist.destroy_process_group()
