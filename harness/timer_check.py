"""``drills timer-check``: the timer's self-test, quiet and beside busy processes it starts.

Three fixed workloads, each a different kind of work a benchmark does:

* ``matmul``: a 256x256 float32 matmul (BLAS, compute-bound, ~0.1-1 ms on a CPU core);
* ``elementwise``: ``torch.add(a, b, out=c)`` on 4 Mi float32 (48 MiB moved, memory-bound);
* ``python_loop``: a 20 000-step Python ``for`` loop (interpreter-bound).

Phase 1 (quiet): each workload is timed ``repeats`` times by the harness
(:func:`harness.timing.measure`) and, interleaved, by ``torch.utils.benchmark.Timer``
(``blocked_autorange``, the same callable and thread count). Phase 2 (loaded): ``busy``
processes spinning on the CPU are started (in their own process group, each with its
own deadline so none can outlive the command; ended by this command in ``finally``),
and the same measurements are taken again.

Figures (and their targets, a benchmark rather than a test):

* quiet ratio: median over workloads and repeats of harness median / Timer median;
  target within 3 % of 1;
* loaded/quiet ratio of each loaded measurement the harness did not flag (flagged =
  ``contended`` or ``noisy``) against the quiet harness median of its workload; target:
  with 2 busy processes on 2 cores, every one within 10 %;
* the share of loaded measurements the harness flagged (the price of being right), and
  the same loaded/quiet ratio for ``Timer``, which flags nothing.

A "quiet" phase on a shared machine is only as quiet as the neighbours: the load
average at the start of each phase is recorded and printed.

Record schema (``results/timer_check/<machine_id>/<utc>_<commit8>.json``, kind
``torchdrills.timer_check``, schema 1)::

    {"schema": 1, "kind": "torchdrills.timer_check", "created_utc": str,
     "machine_id": str, "fingerprint": {...harness.fingerprint...},
     "cores": int, "threads": int, "busy": int, "repeats": int, "min_run_time_s": float,
     "load_avg": {"quiet": [1m, 5m, 15m], "loaded": [1m, 5m, 15m]},
     "targets": {"quiet_ratio_within": 0.03, "loaded_unflagged_within": 0.10},
     "measurements": [{"workload": str, "phase": "quiet" | "loaded", "repeat": int,
                       "harness": {measurement row of harness.timing, samples included},
                       "timer_ms": float,            # torch Timer median, ms
                       "flagged": bool}],            # harness row contended or noisy
     "summary": {"quiet_ratio": float | None,  # over quiet measurements not flagged (None: all were)
                 "quiet_ratios": {workload: float}, "quiet_flagged": int,
                 "loaded_over_quiet_unflagged": [{"workload", "repeat", "ratio"}],
                 "worst_unflagged_deviation": float | None, "flagged_share": float,
                 "timer_loaded_over_quiet": {workload: float},
                 "quiet_target_met": bool | None, "loaded_target_met": bool | None}}

A target is None (not judged) when every measurement it needs was flagged: on a busy
machine the quiet phase is not quiet, and the self-test says so rather than give a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.utils.benchmark as tbench

from harness.timing import NoisyMeasurementWarning, available_cores, intra_op_threads, measure

SCHEMA_VERSION = 1
RECORD_KIND = "torchdrills.timer_check"
#: Target: quiet harness/Timer median ratio within this of 1.
QUIET_TARGET = 0.03
#: Target: every unflagged loaded median within this of its quiet value (2 busy on 2 cores).
LOADED_TARGET = 0.10
#: A busy process ends itself after this many seconds even if nobody ends it.
BUSY_DEADLINE_S = 300.0


def workloads() -> dict[str, Callable[[], Any]]:
    """The fixed callables (inputs made here, outside the timed calls; seeded)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 256, generator=g)
    out = torch.empty(256, 256)
    a = torch.randn(4 * 2**20, generator=g)
    b = torch.randn(4 * 2**20, generator=g)
    c = torch.empty_like(a)

    def python_loop() -> int:
        s = 0
        for i in range(20_000):
            s += i
        return s

    return {
        "matmul": lambda: torch.matmul(x, x, out=out),
        "elementwise": lambda: torch.add(a, b, out=c),
        "python_loop": python_loop,
    }


_BUSY_CODE = "import time\nend = time.monotonic() + {deadline}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def busy_processes(n: int, deadline_s: float = BUSY_DEADLINE_S) -> Iterator[list[subprocess.Popen]]:
    """Start ``n`` CPU-spinning Python processes, each in a new process group; end them on exit.

    Each ends itself after ``deadline_s`` seconds too, so none outlives the command even
    if this process is killed. On exit the group gets SIGTERM, then SIGKILL after 2 s.
    """
    procs: list[subprocess.Popen] = []
    code = _BUSY_CODE.format(deadline=float(deadline_s))
    try:
        for _ in range(n):  # each leads its own process group (a new session), so killpg reaches it alone
            procs.append(
                subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, start_new_session=True)
            )
        time.sleep(0.3)  # let them reach their loops
        yield procs
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(2)


def _timer_ms(fn: Callable[[], Any], threads: int, min_run_time_s: float) -> float:
    t = tbench.Timer("fn()", globals={"fn": fn}, num_threads=threads)
    return float(t.blocked_autorange(min_run_time=min_run_time_s).median * 1e3)


def _phase(
    phase: str, fns: dict[str, Callable[[], Any]], *, threads: int, repeats: int, min_run_time_s: float, log
) -> list[dict[str, Any]]:
    rows = []
    for r in range(repeats):
        for name, fn in fns.items():
            with warnings.catch_warnings(), intra_op_threads(threads):
                warnings.simplefilter("ignore", NoisyMeasurementWarning)
                m = measure(fn, "cpu", min_run_time_s=min_run_time_s, threads=threads)
                ref = _timer_ms(fn, threads, min_run_time_s)
            row = m.to_json()
            rows.append(
                {
                    "workload": name,
                    "phase": phase,
                    "repeat": r,
                    "harness": row,
                    "timer_ms": float(f"{ref:.4g}"),
                    "flagged": bool(row["contended"] or row["noisy"]),
                }
            )
            log(
                f"  {phase:<6} {name:<12} harness {row['median_ms']:.4g} ms "
                f"({row['n_samples'] - (row['n_preempted'] or 0)}/{row['n_samples']} clean"
                f"{', CONTENDED' if row['contended'] else ''}{', noisy' if row['noisy'] else ''}), "
                f"Timer {ref:.4g} ms"
            )
    return rows


def summarise(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary block of the record (module docstring) from its measurements."""
    quiet = [m for m in measurements if m["phase"] == "quiet"]
    loaded = [m for m in measurements if m["phase"] == "loaded"]
    names = list(dict.fromkeys(m["workload"] for m in measurements))
    q_ratio = {
        n: statistics.median(m["harness"]["median_ms"] / m["timer_ms"] for m in quiet if m["workload"] == n)
        for n in names
        if any(m["workload"] == n for m in quiet)
    }
    q_flagged = sum(m["flagged"] for m in quiet)
    q_harness = {n: statistics.median(m["harness"]["median_ms"] for m in quiet if m["workload"] == n) for n in q_ratio}
    q_timer = {n: statistics.median(m["timer_ms"] for m in quiet if m["workload"] == n) for n in q_ratio}
    unflagged = [
        {
            "workload": m["workload"],
            "repeat": m["repeat"],
            "ratio": float(f"{m['harness']['median_ms'] / q_harness[m['workload']]:.4g}"),
        }
        for m in loaded
        if not m["flagged"] and m["workload"] in q_harness
    ]
    worst = max((abs(u["ratio"] - 1) for u in unflagged), default=None)
    timer_lq = {
        n: float(f"{statistics.median(m['timer_ms'] for m in loaded if m['workload'] == n) / q_timer[n]:.4g}")
        for n in q_timer
        if any(m["workload"] == n for m in loaded)
    }
    # quiet ratio over the quiet measurements the harness did not flag (on a shared machine
    # "quiet" may not be): a flagged one's Timer median is inflated by the neighbours
    judged = [m for m in quiet if not m["flagged"]]
    quiet_ratio = statistics.median(m["harness"]["median_ms"] / m["timer_ms"] for m in judged) if judged else None
    return {
        "quiet_ratio": None if quiet_ratio is None else float(f"{quiet_ratio:.4g}"),
        "quiet_ratios": {n: float(f"{v:.4g}") for n, v in q_ratio.items()},
        "quiet_flagged": q_flagged,
        "loaded_over_quiet_unflagged": unflagged,
        "worst_unflagged_deviation": None if worst is None else float(f"{worst:.3g}"),
        "flagged_share": float(f"{sum(m['flagged'] for m in loaded) / len(loaded):.3g}") if loaded else None,
        "timer_loaded_over_quiet": timer_lq,
        "quiet_target_met": None if quiet_ratio is None else abs(quiet_ratio - 1) <= QUIET_TARGET,
        "loaded_target_met": None if worst is None else worst <= LOADED_TARGET,
    }


def run_timer_check(
    *,
    busy: int | None = None,
    threads: int = 1,
    repeats: int = 3,
    min_run_time_s: float = 0.5,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run both phases and return the record (module docstring); nothing is written.

    Raises:
        ValueError: ``busy`` < 0, ``threads`` < 1, ``repeats`` < 1 or ``min_run_time_s`` <= 0.
    """
    from harness.fingerprint import fingerprint, machine_id

    cores = available_cores()
    busy = cores if busy is None else busy
    if busy < 0 or threads < 1 or repeats < 1 or not min_run_time_s > 0:
        raise ValueError(
            f"timer-check: need --busy >= 0, --threads >= 1, --repeats >= 1 and --min-run-time > 0 "
            f"(got {busy}, {threads}, {repeats}, {min_run_time_s})"
        )
    fns = workloads()
    load: dict[str, list[float]] = {}
    load["quiet"] = [round(v, 2) for v in os.getloadavg()]
    log(f"quiet phase: load average {load['quiet'][0]:.2f} on {cores} cores, {threads} thread(s)")
    rows = _phase("quiet", fns, threads=threads, repeats=repeats, min_run_time_s=min_run_time_s, log=log)
    # a busy process ends itself at the latest after twice the loaded phase's longest length
    # (each measurement: up to MAX_RUN_FACTOR x min_run_time for the harness, 1x for Timer) + 30 s
    with busy_processes(busy, deadline_s=30 + 2 * len(rows) * 5 * min_run_time_s):
        load["loaded"] = [round(v, 2) for v in os.getloadavg()]
        log(f"loaded phase: {busy} busy process(es) started; load average {load['loaded'][0]:.2f}")
        rows += _phase("loaded", fns, threads=threads, repeats=repeats, min_run_time_s=min_run_time_s, log=log)
    fp = fingerprint(bench_threads=threads)
    return {
        "schema": SCHEMA_VERSION,
        "kind": RECORD_KIND,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine_id": machine_id(fp),
        "fingerprint": fp,
        "cores": cores,
        "threads": threads,
        "busy": busy,
        "repeats": repeats,
        "min_run_time_s": min_run_time_s,
        "load_avg": load,
        "targets": {"quiet_ratio_within": QUIET_TARGET, "loaded_unflagged_within": LOADED_TARGET},
        "measurements": rows,
        "summary": summarise(rows),
    }


def timer_check_summary(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for the report's environment section from a timer-check record.

    Returns:
        ``[{"figure", "value", "target", "met", "detail"}]``: ``value`` a display string,
        ``met`` True/False, or None where there is no target or nothing to judge.
    """
    s = record.get("summary") or {}
    cores, busy = record.get("cores"), record.get("busy")
    la = record.get("load_avg") or {}
    qr, worst, share = s.get("quiet_ratio"), s.get("worst_unflagged_deviation"), s.get("flagged_share")
    tl = s.get("timer_loaded_over_quiet") or {}
    n_unflagged = len(s.get("loaded_over_quiet_unflagged") or [])
    return [
        {
            "figure": "harness / torch Timer median, quiet",
            "value": "n/a: every quiet measurement was flagged (the machine was not quiet)"
            if qr is None
            else f"{qr:.3f}",
            "target": f"within {QUIET_TARGET:.0%}",
            "met": s.get("quiet_target_met"),
            "detail": ", ".join(f"{k} {v:.3f}" for k, v in (s.get("quiet_ratios") or {}).items())
            + f" (load average {(la.get('quiet') or ['?'])[0]} at start; "
            + f"{s.get('quiet_flagged', '?')} quiet measurement(s) flagged, left out of the ratio)",
        },
        {
            "figure": f"unflagged loaded / quiet median, {busy} busy on {cores} cores",
            "value": "all flagged" if worst is None else f"worst {worst:.1%} off",
            "target": f"within {LOADED_TARGET:.0%}",
            "met": s.get("loaded_target_met"),
            "detail": f"{n_unflagged} unflagged measurement(s); load average {(la.get('loaded') or ['?'])[0]}",
        },
        {
            "figure": "share of loaded measurements flagged",
            "value": "n/a" if share is None else f"{share:.0%}",
            "target": "",
            "met": None,
            "detail": "torch Timer loaded / quiet (it flags nothing): "
            + ", ".join(f"{k} {v:.2f}" for k, v in tl.items()),
        },
    ]


def default_dir() -> Path:
    from harness.fingerprint import REPO_ROOT

    return REPO_ROOT / "results" / "timer_check"


def save_record(record: dict[str, Any], results_dir: Path | None = None) -> Path:
    """Write the record to ``<results_dir>/<machine_id>/<utc>_<commit8>.json`` atomically."""
    from harness.results import atomic_write_json

    commit = ((record.get("fingerprint") or {}).get("git") or {}).get("short") or "nogit"
    utc = record["created_utc"].replace("-", "").replace(":", "")
    path = (results_dir or default_dir()) / record["machine_id"] / f"{utc}_{commit}.json"
    atomic_write_json(path, record, indent=1)
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``drills timer-check``."""
    p.add_argument("--busy", type=int, default=None, metavar="N", help="busy processes in phase 2 (default: cores)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="intra-op threads of the workloads (default 1)")
    p.add_argument("--repeats", type=int, default=3, metavar="R", help="measurements per workload and phase")
    p.add_argument("--min-run-time", type=float, default=0.5, metavar="S", help="seconds per measurement")
    p.add_argument("--results-dir", type=Path, default=None, help="default: results/timer_check")
    p.add_argument("--no-save", action="store_true", help="print only")
    p.add_argument("--format", choices=["table", "json"], default="table")


def run_cli(args: argparse.Namespace, console: Any) -> int:
    """``drills timer-check``: run, print the figures against their targets, save the record.

    Raises:
        UsageError-like ValueError: bad counts (the CLI prints one line, exit 2).
    """
    from harness.cli import UsageError

    cores = os.cpu_count() or 1
    if args.threads is not None and not 1 <= args.threads <= cores:
        raise UsageError(f"--threads {args.threads}: give 1 to {cores} (the cores of this machine)")
    if args.busy is not None and not 0 <= args.busy <= 4 * cores:
        raise UsageError(f"--busy {args.busy}: give 0 to {4 * cores}")
    if args.repeats < 1 or not args.min_run_time > 0:
        raise UsageError("--repeats must be >= 1 and --min-run-time > 0")
    quiet_log = args.format == "json"
    rec = run_timer_check(
        busy=args.busy,
        threads=args.threads,
        repeats=args.repeats,
        min_run_time_s=args.min_run_time,
        log=(lambda s: None) if quiet_log else console.print,
    )
    path = None if args.no_save else save_record(rec, args.results_dir)
    if args.format == "json":
        print(json.dumps(rec["summary"], indent=1))
        return 0
    for row in timer_check_summary(rec):
        met = {True: "[green]met[/]", False: "[red]NOT met[/]", None: ""}[row["met"]]
        tgt = f" (target {row['target']}) {met}" if row["target"] else ""
        console.print(f"{row['figure']}: {row['value']}{tgt}  [dim]{row['detail']}[/]")
    if path:
        console.print(f"record: {path}")
    return 0
