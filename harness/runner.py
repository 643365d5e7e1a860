"""Running tasks: in-process (pytest, asv, debugging) or isolated in a worker process.

:func:`run_task` runs one task in this process and returns its record entry; it never
raises for a task's own failure: a failed check becomes ``fail``, any other exception
``error`` with the traceback's tail, a missing capability ``skip`` naming it.

:class:`Runner` runs many tasks in a spawned worker process (spawn, because CUDA does
not survive ``fork``), one at a time, under a wall-clock limit per task. A task that
hangs past its limit, or kills the worker (segfault, OOM killer, ``os._exit``), is
recorded as ``error`` with the reason; a fresh worker takes the remaining tasks. The
run record is rewritten after every task, and Ctrl-C stops the run with every finished
task kept and the record marked ``interrupted``.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch

from harness import capabilities, contract
from harness.checks import CheckFailed
from harness.context import Context, TaskRecord
from harness.registry import REGISTRY
from harness.task import Task

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
        ValueError: an unknown device string, or cuda asked for where none exists.
    """
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        d = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N") from None
    if d.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; valid: auto, cpu, cuda, cuda:N")
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
) -> dict[str, Any]:
    """Run one task in this process; return its run-record entry (JSON-ready dict).

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
                task.bench(ctx)
                _add_speedups(rec, task_cls.baseline())
        if mutants and task_cls.mutants and any(p[0] == "check" for p in phases):
            _run_mutants(task_cls, rec, device=device, rng_seed=rng_seed)
    except CheckFailed as e:
        rec.status, rec.reason = "fail", str(e)[:2000]
    except KeyboardInterrupt:
        raise
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


def _worker_main(conn, env: dict[str, str]) -> None:
    """Worker loop: receive (task_id, kwargs), send back the record entry; None ends it."""
    os.environ.update(env)
    capabilities.setup_triton_interpreter()
    REGISTRY.load()
    conn.send("ready")  # start-up (importing torch and every task file) is not the task's time
    while True:
        msg = conn.recv()
        if msg is None:
            return
        task_id, kwargs = msg
        try:
            entry = run_task(REGISTRY.get(task_id), **kwargs)
        except KeyboardInterrupt:
            return
        except BaseException as e:  # registry errors and the like: report, keep serving
            entry = {
                "id": task_id,
                "status": "error",
                "reason": f"{type(e).__name__}: {e}",
                "error": _tail(traceback.format_exc()),
            }
        conn.send(entry)


class _Worker:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        env = {k: v for k, v in os.environ.items() if k.startswith(("DRILLS_", "TRITON_"))}
        self.proc = ctx.Process(target=_worker_main, args=(child, env), daemon=True, name="drills-worker")
        self.proc.start()
        child.close()
        self.ready = False

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

    def run(self, task_id: str, kwargs: dict[str, Any], limit_s: float) -> dict[str, Any] | str:
        """The entry, or a string saying why none came (timeout / process death)."""
        if not self.ready:
            why = self.wait_ready()
            if why:
                return why
        try:
            self.conn.send((task_id, kwargs))
        except (BrokenPipeError, OSError):
            return f"worker process died before the task started (exit code {self.proc.exitcode})"
        deadline = time.monotonic() + limit_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                return f"timed out after {limit_s:.0f} s (time limit); the worker was killed"
            try:
                if self.conn.poll(min(remaining, 0.5)):
                    return self.conn.recv()
            except (EOFError, OSError):
                pass
            if not self.proc.is_alive():
                self.proc.join(1)
                code = self.proc.exitcode
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                return f"the task's process died ({how}): crash, out of memory or os._exit"

    def kill(self) -> None:
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
        self.kill()


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
    ):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        self.mode, self.isolate, self.time_limit_s = mode, isolate, time_limit_s
        self.kwargs = dict(
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
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker process, if one is running."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def run_one(self, cls: type[Task]) -> dict[str, Any]:
        """Run one task (isolated unless disabled) and return its record entry."""
        if not self.isolate:
            return run_task(cls, **self.kwargs)
        if self._worker is None or not self._worker.proc.is_alive():
            self._worker = _Worker()
        t0 = time.perf_counter()
        res = self._worker.run(cls.id, self.kwargs, self.limit_for(cls))
        if isinstance(res, str):  # no entry came back: record why and start afresh
            self._worker.kill()
            self._worker = None
            res = {
                "id": cls.id,
                "status": "error",
                "reason": res,
                "area": cls.area,
                "seed": cls.seed,
                "title": cls.title,
                "kind": cls.kind,
                "duration_s": round(time.perf_counter() - t0, 3),
            }
        return res
