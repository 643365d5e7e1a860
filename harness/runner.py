"""Running tasks: in-process (pytest, asv, debugging) or isolated in a worker process.

:func:`run_task` runs one task in this process and returns its record entry; it never
raises for a task's own failure: a failed check becomes ``fail``, any other exception
``error`` with the traceback's tail, a missing capability ``skip`` naming it.

:class:`Runner` runs many tasks in a spawned worker process (spawn, because CUDA does
not survive ``fork``), one at a time, under a wall-clock limit per task. A task that
hangs past its limit, or kills the worker (segfault, OOM killer, ``os._exit``), is
recorded as ``error`` with the reason; a fresh worker takes the remaining tasks (also
after any other error: a sticky CUDA error must not poison the next task). The worker is
its own process group: on a timeout or at the end the whole group is killed, so nothing a
task started outlives it; a worker whose ``drills`` process died ends itself. A task cut
off by its time limit keeps the checks and measurements it recorded before. Its stdout
and stderr go to files; their last lines are kept in its entry. The run record is
rewritten after every task, and Ctrl-C (or SIGTERM) stops the run with every finished
task kept and the record marked ``interrupted``.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from harness import capabilities, contract
from harness import context as context_mod
from harness.checks import CheckFailed
from harness.context import Context, TaskRecord
from harness.data.errors import DataFormatError, DataNotFoundError
from harness.registry import REGISTRY
from harness.results import mark_abandoned, sanitise_entry
from harness.task import Task
from harness.timing import intra_op_threads

#: Default wall-clock limit per task and mode, in seconds.
DEFAULT_TIME_LIMIT_S = {"check": 180.0, "bench": 600.0, "run": 780.0}
MODES = ("check", "bench", "run")
#: Seconds a worker may take to start (import torch and every task file) before the
#: run gives up on it; the per-task limit starts only after that.
STARTUP_LIMIT_S = 600.0


def default_size(mode: str, device: torch.device) -> str:
    """The ``drills`` front end's default preset (the rule: :func:`harness.contract.default_size`)."""
    return contract.default_size(mode, device.type, "drills")


def resolve_device(device: str | None) -> torch.device:
    """Parse ``--device``: ``auto`` (cuda if present, else cpu), ``cpu``, ``cuda``, ``cuda:N``.

    Raises:
        ValueError: an empty or unknown device string, ``cpu:N`` with N > 0, or cuda asked
            for where none exists.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not device.strip():
        raise ValueError("empty device; valid: auto, cpu, cuda, cuda:N")
    try:
        d = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N") from None
    if d.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; valid: auto, cpu, cuda, cuda:N")
    if d.type == "cpu" and d.index not in (None, 0):
        raise ValueError(f"device {device!r}: the CPU is one device (cpu), it takes no index")
    if d.type == "cpu":
        return torch.device("cpu")
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU here; use --device cpu")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return d


@contextlib.contextmanager
def check_threads():
    """Run checks on ``$DRILLS_CHECK_THREADS`` intra-op threads (default 1).

    Checks are about values, not speed, and use tiny tensors. On a small shared machine
    two OpenMP threads contending with other work made tiny ops 30-80x slower (a digits
    MLP check: 54 s with 2 threads, 7 s with 1, load average 9 on 2 cores).
    Benchmarks keep torch's default thread count, which the fingerprint records.
    """
    n = int(os.environ.get("DRILLS_CHECK_THREADS", "1"))
    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _tail(tb: str, lines: int = 25) -> str:
    return "\n".join(tb.rstrip().splitlines()[-lines:])


def run_task(
    task_cls: type[Task],
    *,
    mode: str = "check",
    device: str | torch.device = "cpu",
    size: str | None = None,
    rng_seed: int = 0,
    peak: dict[str, float] | None = None,
    min_run_time_s: float = 0.5,
    timing_mode: str = "auto",
    mutants: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run one task in this process; return its run-record entry (JSON-ready dict).

    ``threads`` (``--threads``) sets the intra-op threads of the bench phase (None: torch's default).

    With ``mutants`` (``drills check --mutants``), a passing check is then run once per
    declared mutant (``harness.mutants``); a mutant the check does not catch fails the task.
    The task's claims (``harness.claims``) are evaluated on the finished entry.
    """
    device = torch.device(device)
    rec = TaskRecord(id=task_cls.id)
    meta = {
        "area": task_cls.area,
        "seed": task_cls.seed,
        "title": task_cls.title,
        "kind": task_cls.kind,
        "device": str(device),
        "mode": mode,
    }
    t0 = time.perf_counter()
    miss = capabilities.missing(list(task_cls.requires))
    if miss:
        rec.status, rec.reason = "skip", capabilities.skip_reason(miss)
        out = {**rec.to_json(), **meta, "duration_s": 0.0}
        return _with_claims(task_cls, out, device)
    task = task_cls()
    # check runs on the given size only in check mode; `run` always checks on tiny.
    phases: list[tuple[str, str, torch.dtype]] = []
    if mode in ("check", "run"):
        check_size = (size or "tiny") if mode == "check" else "tiny"
        phases += [("check", check_size, dt) for dt in task_cls.check_dtypes]
    if mode in ("bench", "run"):
        bdt = task_cls.bench_dtypes.get(device.type, torch.float32)
        phases.append(("bench", size or default_size("bench", device), bdt))
    meta["size"] = phases[-1][1]
    meta["dtype"] = str(phases[-1][2]).replace("torch.", "")
    try:
        for phase, psize, dtype in phases:
            ctx = Context(
                task,
                mode=phase,
                device=device,
                dtype=dtype,
                size=psize,
                rng_seed=rng_seed,
                peak=peak,
                min_run_time_s=min_run_time_s,
                timing_mode=timing_mode,
                record=rec,
            )
            torch.manual_seed(rng_seed)
            if phase == "check":
                with check_threads():
                    task.check(ctx)
            else:
                with intra_op_threads(threads):
                    task.bench(ctx)
                _add_speedups(rec, task_cls.baseline())
        if mutants and task_cls.mutants and any(p[0] == "check" for p in phases):
            _run_mutants(task_cls, rec, device=device, rng_seed=rng_seed)
    except CheckFailed as e:
        rec.status, rec.reason = "fail", str(e)[:2000]
    except KeyboardInterrupt:
        raise
    except (DataFormatError, DataNotFoundError) as e:  # the user's data: its message names file and fix
        rec.status, rec.reason = "error", f"{type(e).__name__}: {e}"[:2000]
    except Exception as e:
        rec.status = "error"
        rec.reason = f"{type(e).__name__}: {e}"[:2000]
        meta["error"] = _tail(traceback.format_exc())
    out = {**rec.to_json(), **meta, "duration_s": round(time.perf_counter() - t0, 3)}
    return _with_claims(task_cls, out, device)


def _run_mutants(task_cls: type[Task], rec: TaskRecord, *, device: torch.device, rng_seed: int) -> None:
    """Check strength: each declared mutant must make the check fail (see harness.mutants)."""
    from harness.mutants import run_mutants

    rec.mutants = run_mutants(task_cls, device=device, rng_seed=rng_seed)
    survivors = [m["name"] for m in rec.mutants if not m["caught"]]
    if survivors:
        raise CheckFailed(
            f"{len(survivors)} of {len(rec.mutants)} mutants survived (the check cannot see them): "
            + "; ".join(f"{m['name']}: {m['how']}" for m in rec.mutants if not m["caught"])
        )


def _with_claims(task_cls: type[Task], entry: dict[str, Any], device: torch.device) -> dict[str, Any]:
    from harness.claims import evaluate_all

    verdicts = evaluate_all(task_cls, entry, device.type)
    if verdicts:
        entry["claims"] = verdicts
    return entry


def _add_speedups(rec: TaskRecord, baseline: str | None) -> None:
    """speedup_vs_baseline = baseline median / implementation median, per config and dtype."""
    if not baseline:
        return
    base = {(m["config"], m["dtype"]): m["median_ms"] for m in rec.measurements if m["impl"] == baseline}
    for m in rec.measurements:
        b = base.get((m["config"], m["dtype"]))
        if b and m.get("median_ms"):
            m["speedup_vs_baseline"] = float(f"{b / m['median_ms']:.4g}")


# -- isolation ------------------------------------------------------------------------------
#
# Protocol over the worker's pipe. Main -> worker: ``(task_id, kwargs)`` to run a task,
# ``None`` to end. Worker -> main: ``"ready"`` once after start-up; ``("partial", entry)``
# any number of times while a task runs (its record so far, sent from the context's record
# hook after each check, measurement, metric, table or note: never throttled, as the last
# one before a hang is the one that matters); then the final entry (a dict). A task cut
# off by its time limit keeps the last partial entry, marked ``error``.
#
# Process groups: the worker calls ``os.setsid()`` first thing, so it and everything its
# tasks start (servers, ``sleep``, DDP ranks) form one group that the runner ends with
# ``os.killpg``; a terminal Ctrl-C reaches only the main process, which ends the group.

#: Lines and characters of a task's stdout / stderr kept in its entry.
OUTPUT_TAIL_LINES, OUTPUT_TAIL_CHARS = 20, 4000


def _send_or_exit(conn, msg: Any) -> None:
    """Send to the main process; if it is gone, end quietly (no BrokenPipeError later)."""
    try:
        conn.send(msg)
    except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
        os._exit(0)


#: Environment variable naming the run record the ``drills`` process writes; a worker that
#: outlives that process (SIGKILL) marks the record ``interrupted`` so it does not stay "running".
RECORD_ENV = "DRILLS_RUN_RECORD"


def _watch_parent(ppid: int) -> None:
    """End this worker's whole process group once its parent (the ``drills`` process) is gone."""

    def loop() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != ppid:
                record = os.environ.get(RECORD_ENV)
                if record:
                    with contextlib.suppress(Exception):
                        mark_abandoned(Path(record))
                os.killpg(0, signal.SIGKILL)

    threading.Thread(target=loop, name="drills-parent-watch", daemon=True).start()


def _worker_main(conn, env: dict[str, str], out_paths: tuple[str, str] | None = None) -> None:
    """Worker loop: receive (task_id, kwargs), send partial entries and the entry; None ends it."""
    os.setsid()
    # SIGINT/SIGTERM were ignored from the start (see _Worker) until this process had left the
    # terminal's process group; a task's own signals work as usual from here on.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _watch_parent(os.getppid())
    if out_paths is not None:  # fd 1/2 (and every child's) into files the main process reads
        for fd, p in zip((1, 2), out_paths):
            f = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.dup2(f, fd)
            os.close(f)
    os.environ.update(env)
    capabilities.setup_triton_interpreter()
    REGISTRY.load()
    last: dict[str, Any] = {"entry": None}

    me = os.getpid()

    def on_record(rec: TaskRecord, what: str) -> None:
        if os.getpid() != me:  # a forked child of the task (a DDP rank): the pipe is not its to use
            return
        # no deep copy (to_json's asdict costs ~20 ms on a bench's record): pickling is the snapshot
        d = {**vars(rec), "checks": list(rec.checks.values())}
        last["entry"] = {k: v for k, v in d.items() if v not in ("", [], {}) or k in ("status", "id")}
        try:
            conn.send(("partial", last["entry"]))
        except (pickle.PicklingError, TypeError, AttributeError):  # an unpicklable value in a table
            _send_or_exit(conn, ("partial", sanitise_entry(last["entry"])))
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            os._exit(0)

    context_mod.RECORD_HOOK = on_record
    _send_or_exit(conn, "ready")  # start-up (importing torch and every task file) is not the task's time
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        if msg is None:
            return
        task_id, kwargs = msg
        last["entry"] = None
        try:
            entry = run_task(REGISTRY.get(task_id), **kwargs)
        except KeyboardInterrupt:  # only the task can raise it here: the terminal's Ctrl-C goes to the main process
            entry = {
                **(last["entry"] or {}),
                "id": task_id,
                "status": "error",
                "reason": "KeyboardInterrupt raised inside the task (the run was not interrupted)",
                "error": _tail(traceback.format_exc()),
            }
        except BaseException as e:  # registry errors, SystemExit and the like: report, keep serving
            entry = {
                **(last["entry"] or {}),
                "id": task_id,
                "status": "error",
                "reason": f"{type(e).__name__}: {e}",
                "error": _tail(traceback.format_exc()),
            }
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        _send_or_exit(conn, sanitise_entry(entry))


def _output_tail(path: Path) -> str:
    """The last OUTPUT_TAIL_LINES lines of ``path`` (at most OUTPUT_TAIL_CHARS), or ''."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln[:400] for ln in text.rstrip().splitlines()[-OUTPUT_TAIL_LINES:]]
    out = "\n".join(lines)[-OUTPUT_TAIL_CHARS:]
    if out and size > len(out.encode()):
        out = f"(last {len(lines)} lines of {size} bytes)\n{out}"
    return out


class _Worker:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        env = {k: v for k, v in os.environ.items() if k.startswith(("DRILLS_", "TRITON_"))}
        self.tmp = Path(tempfile.mkdtemp(prefix="drills-worker-"))
        # tasks' scratch folders go inside the worker's own: a worker killed mid-task (time limit,
        # Ctrl-C) cannot clean up, and close() removes this folder with everything in it
        env["DRILLS_SCRATCH_DIR"] = str(self.tmp)
        self.out_paths = (self.tmp / "stdout.txt", self.tmp / "stderr.txt")
        for p in self.out_paths:
            p.touch()
        self.proc = ctx.Process(
            target=_worker_main,
            args=(child, env, tuple(str(p) for p in self.out_paths)),
            # not daemonic: tasks start processes of their own (DataLoader workers, the elastic
            # agent), which a daemonic process may not; close()/kill() and the worker's
            # parent-death watch end it, and its process group goes with it
            daemon=False,
            name="drills-worker",
        )
        # Until the worker has its own session, a terminal Ctrl-C reaches it too (a traceback
        # from its imports). An ignored signal stays ignored across exec, and Python keeps it
        # so, so the worker starts deaf to both until its setsid(). (A signal blocked here
        # would not do: the spawned interpreter starts with an empty mask.) A Ctrl-C in the
        # few milliseconds of start() is lost; the next one works.
        main_thread = threading.current_thread() is threading.main_thread()  # signal.signal needs it
        sigs = (signal.SIGINT, signal.SIGTERM) if main_thread else ()
        old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
        try:
            self.proc.start()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        child.close()
        self.ready = False
        self.partial: dict[str, Any] | None = None

    def wait_ready(self) -> str | None:
        """Wait for the worker's start-up; None when ready, else why it never came."""
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while time.monotonic() < deadline:
            try:
                if self.conn.poll(0.5):
                    if self.conn.recv() == "ready":
                        self.ready = True
                        return None
            except (EOFError, OSError):
                pass
            if not self.proc.is_alive():
                return f"the worker process died while starting (exit code {self.proc.exitcode})"
        self.kill()
        return f"the worker process did not start within {STARTUP_LIMIT_S:.0f} s"

    def clear_output(self) -> None:
        for p in self.out_paths:
            with contextlib.suppress(OSError):
                os.truncate(p, 0)  # the worker appends (O_APPEND), so it writes from 0 again

    def output(self) -> dict[str, str]:
        """The task's captured stdout / stderr tails (non-empty ones only)."""
        out = {name: _output_tail(p) for name, p in zip(("stdout", "stderr"), self.out_paths)}
        return {k: v for k, v in out.items() if v}

    def run(self, task_id: str, kwargs: dict[str, Any], limit_s: float) -> dict[str, Any] | str:
        """The entry, or a string saying why none came (timeout / process death).

        While the task runs, its partial entries are kept in :attr:`partial`.
        """
        self.partial = None
        if not self.ready:
            why = self.wait_ready()
            if why:
                return why
        self.clear_output()
        try:
            self.conn.send((task_id, kwargs))
        except (BrokenPipeError, OSError):
            return f"worker process died before the task started (exit code {self.proc.exitcode})"
        deadline = time.monotonic() + limit_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                if self.partial is not None:
                    return (
                        f"timed out: cut off at {limit_s:.0f} s (time limit); the worker was killed, "
                        "what the task recorded before is kept"
                    )
                return f"timed out after {limit_s:.0f} s (time limit); the worker was killed"
            try:
                if self.conn.poll(min(remaining, 0.5)):
                    msg = self.conn.recv()
                    if isinstance(msg, tuple) and msg and msg[0] == "partial":
                        self.partial = msg[1]
                        continue
                    return msg
            except (EOFError, OSError):
                pass
            if not self.proc.is_alive():
                self.proc.join(1)
                code = self.proc.exitcode
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                return f"the task's process died ({how}): crash, out of memory or os._exit"

    def kill(self) -> None:
        """End the worker and every process its tasks started (its process group)."""
        if self.proc.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # pgid == pid after the worker's setsid()
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)

    def close(self) -> None:
        try:
            if self.proc.is_alive():
                self.conn.send(None)
                self.proc.join(10)
        except (BrokenPipeError, OSError):
            pass
        self.kill()  # also what a finished task left running in the group
        shutil.rmtree(self.tmp, ignore_errors=True)


class Runner:
    """Run tasks one after another, isolated, and hand each entry to ``on_result``.

    Args:
        isolate: run each task in a worker process (True) or in this process (False).
        time_limit_s: override of the per-task wall-clock limit.
    """

    def __init__(
        self,
        *,
        mode: str,
        device: torch.device,
        size: str | None,
        rng_seed: int = 0,
        peak: dict[str, float] | None = None,
        min_run_time_s: float = 0.5,
        timing_mode: str = "auto",
        isolate: bool = True,
        time_limit_s: float | None = None,
        mutants: bool = False,
        threads: int | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        self.mode, self.isolate, self.time_limit_s = mode, isolate, time_limit_s
        self.kwargs: dict[str, Any] = dict(
            mode=mode,
            device=str(device),
            size=size,
            rng_seed=rng_seed,
            peak=peak,
            min_run_time_s=min_run_time_s,
            timing_mode=timing_mode,
        )
        if mutants:
            self.kwargs["mutants"] = True
        if threads is not None:
            self.kwargs["threads"] = threads
        self._worker: _Worker | None = None

    def limit_for(self, task_cls: type[Task]) -> float:
        if self.time_limit_s is not None:
            return self.time_limit_s
        limit = (task_cls.time_limit_s or {}).get(self.mode, DEFAULT_TIME_LIMIT_S[self.mode])
        # --mutants runs the check once more per mutant
        return limit * (1 + len(task_cls.mutants)) if self.kwargs.get("mutants") else limit

    def run(
        self,
        tasks: list[type[Task]],
        on_result: Callable[[dict[str, Any]], None],
        on_start: Callable[[type[Task]], None] | None = None,
    ) -> None:
        try:
            for cls in tasks:
                if on_start:
                    on_start(cls)
                on_result(self.run_one(cls))
        except BaseException:  # Ctrl-C, SIGTERM: end the task's process group now, not after 10 s
            self.kill()
            raise
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker process, if one is running."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def kill(self) -> None:
        """Kill the worker's process group at once (on interrupt)."""
        if self._worker is not None:
            self._worker.kill()
            self._worker.close()
            self._worker = None

    def run_one(self, cls: type[Task]) -> dict[str, Any]:
        """Run one task (isolated unless disabled) and return its record entry."""
        if not self.isolate:
            return run_task(cls, **self.kwargs)
        if self._worker is None or not self._worker.proc.is_alive():
            self._worker = _Worker()
        t0 = time.perf_counter()
        worker = self._worker
        res = worker.run(cls.id, self.kwargs, self.limit_for(cls))
        if isinstance(res, str):  # no entry came back: record why (and what came before)
            worker.kill()
            res = {**(worker.partial or {}), "id": cls.id, "status": "error", "reason": res}
        res.update(worker.output())
        for k, v in (("area", cls.area), ("seed", cls.seed), ("title", cls.title), ("kind", cls.kind)):
            res.setdefault(k, v)
        res.setdefault("device", self.kwargs["device"])
        res.setdefault("mode", self.mode)
        res.setdefault("duration_s", round(time.perf_counter() - t0, 3))
        if res.get("status") == "error":  # a sticky CUDA error would poison the tasks after it
            worker.close()
            self._worker = None
        return res
