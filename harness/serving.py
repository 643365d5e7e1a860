"""Real servers for the serving tasks: start, ready-check, load and stop, leaving nothing behind.

:class:`Server` starts a command (``python -m kernels.serve.main ...``) as the leader of its
own process group on a free loopback port, polls a ready route until it answers 200, and
stops the whole group in ``stop()`` (SIGTERM, then SIGKILL after a grace period), which its
context manager calls on any exit: a failed check, an exception, Ctrl-C (KeyboardInterrupt
runs ``__exit__`` like any other exception). A harness process killed outright cannot run
``stop()``; the server side covers that case by watching its parent
(``kernels.serve.main.watch_parent``). Every server's argv carries ``--tag TAG`` so that a test
can scan ``/proc`` for anything left over (:func:`processes_tagged`); no psutil needed.

:func:`run_load` is the load generator: N client threads, each with its own keep-alive
HTTP/1.1 connection, sending requests until a count or a deadline is reached (both bounded),
to loopback only. It returns requests/s and per-request latencies; every response is checked
by the caller's ``verify`` (a wrong answer under load is an error, not a data point).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
#: Environment variable that fixes the tag servers carry (a test sets it to find leftovers).
TAG_ENV = "DRILLS_SERVE_TAG"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    """A server did not start or answer; the message holds the tail of its log."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def request(
    port: int, method: str, path: str, body: bytes | str | dict | None = None, *, timeout_s: float = 10.0
) -> tuple[int, Any]:
    """One HTTP request to loopback; returns ``(status, parsed JSON body or raw text)``.

    ``body``: a dict is sent as JSON, bytes/str as they are (malformed JSON on purpose).
    """
    data = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
    try:
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode(errors="replace")


class Server:
    """A server process group on a free loopback port.

    Args:
        argv: the command without ``--port`` / ``--tag`` (they are appended).
        name: for messages ("uvicorn", "gunicorn").
        ready_path: a GET route answering 200 once the server can serve.
        ready_timeout_s: seconds to wait for it (imports and model loading included).
        log_path: where stdout and stderr go (a temp file when None).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        ready_path: str = "/health",
        ready_timeout_s: float = 60.0,
        log_path: str | Path | None = None,
    ):
        self.argv, self.name, self.ready_path, self.ready_timeout_s = list(argv), name, ready_path, ready_timeout_s
        self.tag = os.environ.get(TAG_ENV) or f"drills-serve-{uuid.uuid4().hex[:12]}"
        unique = f"{self.tag}-{name}-{uuid.uuid4().hex[:6]}.log"  # several servers may share a tag
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / unique
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, attempts: int = 3) -> Server:
        """Start and wait until ready. Raises ServerError (log tail) if it exits or times out.

        The port is free when chosen but another process may take it before the server binds
        it; a start that fails with "address already in use" is retried on a new port.
        """
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        env.setdefault("OMP_NUM_THREADS", "1")
        for attempt in range(attempts):
            self.port = free_port()
            cmd = [*self.argv, "--port", str(self.port), "--tag", self.tag]
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            try:
                self._wait_ready()
                return self
            except ServerError as e:
                self.stop()
                if "in use" not in str(e).lower() or attempt == attempts - 1:
                    raise
            except BaseException:  # Ctrl-C while waiting: nothing may outlive it
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready\n{self.log()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if request(self.port, "GET", self.ready_path, timeout_s=2.0)[0] == 200:
                    return
            time.sleep(0.05)
        raise ServerError(f"{self.name} not ready after {self.ready_timeout_s:.0f} s on port {self.port}\n{self.log()}")

    def log(self, lines: int = 15) -> str:
        """The last lines of the server's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the whole group, SIGKILL what is left after ``grace_s``, reap the leader."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the leader's pid is the group id
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (self.proc.poll() is None or group_members(pgid)):
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 2.0
        while group_members(pgid) and time.monotonic() < deadline:  # SIGKILLed children being reaped
            time.sleep(0.02)
        self.proc = None
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_command(server: str, app: str, settings: dict[str, Any], **opts: int) -> list[str]:
    """argv for ``kernels.serve.main``; ``opts``: ``workers``, ``http_threads``."""
    cmd = [sys.executable, "-m", "kernels.serve.main", "--server", server, "--app", app]
    cmd += ["--settings", json.dumps(settings)]
    for k, v in opts.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    return cmd


def _proc_stat(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...


def group_members(pgid: int) -> list[int]:
    """Live pids (zombies excluded) in process group ``pgid``, read from /proc."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        st = _proc_stat(pid)
        if st and st[2] == str(pgid) and st[0] != "Z":
            out.append(int(pid))
    return out


def processes_tagged(tag: str) -> list[int]:
    """Live pids whose command line contains ``tag`` (leftover servers and their workers)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        st = _proc_stat(pid)
        if tag.encode() in cmd and st and st[0] != "Z":
            out.append(int(pid))
    return out


@dataclasses.dataclass
class LoadResult:
    """What :func:`run_load` measured. Times in ms; ``errors`` are (request index, problem)."""

    clients: int
    latencies_ms: list[float]
    wall_s: float
    errors: list[tuple[int, str]]

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        """Completed requests per second of wall time."""
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile latency (q in 0..100), nearest-rank."""
        s = sorted(self.latencies_ms)
        return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))] if s else float("nan")

    def summary(self) -> dict[str, float]:
        return {
            "clients": self.clients,
            "requests": self.requests,
            "errors": len(self.errors),
            "rps": round(self.rps, 1),
            "p50_ms": round(statistics.median(self.latencies_ms), 3) if self.latencies_ms else float("nan"),
            "p99_ms": round(self.percentile(99), 3),
        }


def run_load(
    port: int,
    path: str,
    bodies: Sequence[bytes],
    *,
    clients: int,
    max_requests: int,
    max_seconds: float,
    verify: Callable[[int, int, Any], str | None] | None = None,
    timeout_s: float = 10.0,
) -> LoadResult:
    """``clients`` threads POST ``bodies[i % len(bodies)]`` to ``path`` until ``max_requests``
    are sent or ``max_seconds`` have passed; each thread keeps one HTTP/1.1 connection open
    (http.client reconnects when a server closes it, as gunicorn's sync workers do).

    Args:
        verify: ``verify(i, status, json_body)`` returns a problem string or None; problems
            and non-200 answers are recorded in ``errors``.

    Raises:
        ValueError: clients < 1, max_requests < 1, max_seconds <= 0 or no bodies.
    """
    if clients < 1 or max_requests < 1 or max_seconds <= 0 or not bodies:
        got = f"clients={clients}, max_requests={max_requests}, max_seconds={max_seconds}, bodies={len(bodies)}"
        raise ValueError(f"run_load: needs clients >= 1, max_requests >= 1, max_seconds > 0 and a body; got {got}")
    lock = threading.Lock()
    counter = iter(range(max_requests))
    latencies: list[float] = []
    errors: list[tuple[int, str]] = []
    t0 = time.perf_counter()
    deadline = t0 + max_seconds

    def client() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
        try:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    conn.request(
                        "POST", path, body=bodies[i % len(bodies)], headers={"Content-Type": "application/json"}
                    )
                    resp = conn.getresponse()
                    raw = resp.read()
                    status = resp.status
                except (OSError, http.client.HTTPException) as e:
                    conn.close()  # a fresh connection for the next request
                    with lock:
                        errors.append((i, f"{type(e).__name__}: {e}"))
                    continue
                ms = (time.perf_counter() - start) * 1e3
                problem = None if status == 200 else f"status {status}: {raw[:200]!r}"
                if problem is None and verify is not None:
                    problem = verify(i, status, json.loads(raw))
                with lock:
                    latencies.append(ms)
                    if problem:
                        errors.append((i, problem))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, name=f"load-client-{k}", daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:  # each ends by the deadline plus at most one request's timeout
        t.join(max_seconds + timeout_s + 1.0)
    return LoadResult(clients, latencies, time.perf_counter() - t0, errors)


@contextlib.contextmanager
def tagged_servers(tag: str | None = None):
    """Servers started inside carry ``tag``; on exit, raise if any process with it is alive.

    For tests: ``with tagged_servers(): run_check(Task)`` proves the check left nothing behind.

    Raises:
        AssertionError: names the leftover pids (after a 3 s grace for exiting processes).
    """
    tag = tag or f"drills-serve-test-{uuid.uuid4().hex[:12]}"
    old = os.environ.get(TAG_ENV)
    os.environ[TAG_ENV] = tag
    try:
        yield tag
    finally:
        if old is None:
            os.environ.pop(TAG_ENV, None)
        else:
            os.environ[TAG_ENV] = old
    deadline = time.monotonic() + 3.0
    while processes_tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = processes_tagged(tag)
    if left:
        raise AssertionError(f"processes tagged {tag} outlived their servers: {left}")
