"""Launch a function on several processes with torch's own elastic launcher (what ``torchrun`` runs).

:func:`launch` is ``torchrun --standalone --nproc-per-node=W`` for a Python function: it
hands ``fn`` to ``torch.distributed.launcher.api.elastic_launch`` with a ``LaunchConfig``
(c10d rendezvous on this host, ``max_restarts``, spawned interpreters), so the ranks see
exactly the environment torchrun gives them:

========================  ==========================================================
``MASTER_ADDR/PORT``      the rendezvous store's host and a free port (c10d picks it)
``RANK``/``LOCAL_RANK``   0 .. world_size-1 (one node: both the same)
``WORLD_SIZE``            and ``LOCAL_WORLD_SIZE``: world_size
``TORCHELASTIC_RUN_ID``   and the other ``TORCHELASTIC_*`` variables of the agent
``OMP_NUM_THREADS``       1, as torchrun sets it: W ranks x all cores each would
                          oversubscribe the CPU many times over
========================  ==========================================================

Each rank unpickles ``fn`` (so ``fn`` must be importable *by reference*: a module-level
function of an importable module; task files qualify as ``drills_tasks.<area>.<slug>``,
and the parent's ``sys.path`` extras travel in ``PYTHONPATH``), optionally joins a process
group (``backend="auto"``: NCCL when every rank gets its own GPU, else gloo), calls
``fn(*args, **kwargs)`` and returns the value; the agent collects them per rank.

What the harness adds around the agent, because a benchmark run must never hang or leak:
the agent runs in its own process (a new session), so a job that outlives ``timeout_s``
is ended by killing that whole process group (agent and every rank) and raises
:class:`LaunchTimeout`; a rank that raises or dies surfaces as :class:`LaunchError`
naming the first failed rank with its traceback (the agent's ``ChildFailedError``, whose
error files ``torch.distributed.elastic.multiprocessing.errors.record`` writes).

The same rank functions run across machines under a real torchrun; see the README
("Several machines") and :mod:`harness.dist`.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
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
    max_restarts: int = 0,
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
        max_restarts: times the agent restarts all ranks after a failure (torchrun's
            ``--max-restarts``); 0 fails at the first error.

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
    workdir = Path(tempfile.mkdtemp(prefix="drills-launch-"))
    try:
        (workdir / "job.pkl").write_bytes(job)
        env_extra = {**(env or {}), "OMP_NUM_THREADS": str(omp_threads)}
        return _run(workdir, world_size, timeout_s, env_extra, max_restarts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(workdir: Path, world_size: int, timeout_s: float, extra_env: dict[str, str], max_restarts: int) -> list[Any]:
    """Start the elastic agent in its own session, wait, and read back values or the failure."""
    env = {**os.environ, **extra_env, "PYTHONPATH": _pythonpath()}
    cmd = [sys.executable, "-c", _AGENT, str(workdir), str(world_size), str(max_restarts)]
    with open(workdir / "agent.log", "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            alive = [r for r in range(world_size) if not (workdir / f"rank{r}.done").exists()]
            _kill_group(proc)
            raise LaunchTimeout(
                f"launch timed out after {timeout_s:.0f} s with rank(s) {alive} unfinished; every rank was killed\n"
                + _tail(workdir / "agent.log")
            ) from None
        except BaseException:  # Ctrl-C, SIGTERM in the caller: nothing may outlive it
            _kill_group(proc)
            raise
        finally:
            _kill_group(proc)  # ranks left behind by a crashed agent
    result = workdir / "result.pkl"
    if not result.exists():
        raise LaunchError(
            f"the elastic agent exited with code {proc.returncode} and no result\n" + _tail(workdir / "agent.log")
        )
    out = pickle.loads(result.read_bytes())
    if "failed_rank" in out:
        rank = out["failed_rank"]
        raise LaunchError(f"rank {rank} of {world_size} failed ({out['why']})\n{out['message']}", rank=rank)
    return out["values"]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


_AGENT = "import sys; from harness.launch import _agent_main; sys.exit(_agent_main(*sys.argv[1:]))"


def _end_with_parent(workdir: Path) -> None:
    """End this session's group (agent and ranks) and remove ``workdir`` once the process that
    started it is gone (nobody is left to read the results or clean up).

    The agent has its own session, so the runner's kill of its worker's process group (Ctrl-C,
    SIGTERM, a SIGKILLed ``drills``, a task's time limit) does not reach it: without this the
    agent and its ranks ran on, orphaned, until their job ended by itself.
    """
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                shutil.rmtree(workdir, ignore_errors=True)
                os.killpg(0, signal.SIGKILL)
            time.sleep(0.5)

    threading.Thread(target=watch, name="drills-agent-parent-watch", daemon=True).start()


def _agent_main(workdir_str: str, world_size: str, max_restarts: str) -> int:
    """The elastic agent's process: ``torchrun --standalone`` for :func:`_rank_main`."""
    import uuid

    _end_with_parent(Path(workdir_str))

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    workdir = Path(workdir_str)
    extra: dict[str, Any] = {}
    if "shutdown_timeout" in {f.name for f in dataclasses.fields(LaunchConfig)}:  # torch >= 2.9
        extra["shutdown_timeout"] = 3  # seconds between SIGTERM and SIGKILL of the other ranks
    config = LaunchConfig(
        **extra,
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=int(world_size),
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # what `torchrun --standalone` uses: a free port on this host
        max_restarts=int(max_restarts),
        monitor_interval=0.1,
        start_method="spawn",
    )
    try:
        values = elastic_launch(config, _rank_main)(workdir_str)
        out: dict[str, Any] = {"values": [values[r] for r in range(int(world_size))]}
    except ChildFailedError as e:
        raised = sorted(
            (int(p.read_text().split("\n", 1)[0]), int(p.stem[4:]), p.read_text().split("\n", 1)[1])
            for p in workdir.glob("rank*.error")
        )
        if raised:
            _, rank, trace = raised[0]
            out = {"failed_rank": rank, "why": "raised", "message": trace}
            _write_result(workdir, out)
            return 0
        rank, failure = e.get_first_failure()
        data = failure.error_file_data or {}
        message = data.get("message", {})
        trace = message.get("extraInfo", {}).get("py_callstack", "") if isinstance(message, dict) else str(message)
        why = f"exit code {failure.exitcode}" if failure.exitcode and failure.exitcode > 0 else "raised"
        if failure.exitcode and failure.exitcode < 0:
            why = f"killed by signal {-failure.exitcode}"
        elif not trace:
            why = f"exit code {failure.exitcode}"
        out = {"failed_rank": rank, "why": why, "message": trace or failure.message or ""}
    _write_result(workdir, out)
    return 0


def _write_result(workdir: Path, out: dict[str, Any]) -> None:
    tmp = workdir / "result.tmp"
    tmp.write_bytes(pickle.dumps(out))
    tmp.replace(workdir / "result.pkl")


def _rank_main(workdir_str: str) -> Any:
    """One rank: join the process group (if asked), run the job, leave the group."""
    from datetime import timedelta

    workdir = Path(workdir_str)
    rank = int(os.environ["RANK"])
    (workdir / f"rank{rank}.started").touch()
    dist = torch.distributed
    # importing the registry installs the finder for task modules (drills_tasks.<area>.<slug>)
    import harness.registry  # noqa: F401

    fn, args, kwargs, backend, timeout_s = pickle.loads((workdir / "job.pkl").read_bytes())
    try:
        if backend is not None:
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        value = fn(*args, **kwargs)
    except BaseException:
        # stamped before the process group goes down: a peer that fails *because* this rank
        # left fails later, and the agent names whoever raised first as the cause
        (workdir / f"rank{rank}.error").write_text(f"{time.time_ns()}\n{traceback.format_exc()}")
        raise
    finally:
        if backend is not None and dist.is_initialized():
            dist.destroy_process_group()
    (workdir / f"rank{rank}.done").touch()
    return value
