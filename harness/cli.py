"""The ``drills`` command line.

    drills list    [--area A] [--task T] [--format table|json]
    drills check   [filters] [--device D] [--size S]         correctness only (tiny)
    drills bench   [filters] [--device D] [--size S]         timing only
    drills run     [filters] [--device D] [--size S]         check + bench + report
    drills report  [RUN.json ...] [--out reports/index.html]
    drills compare RUN_A.json RUN_B.json [--force]          rank test on raw samples
    drills timer-check [--busy N] [--threads N] [--repeats R] the timer beside busy processes
    drills env     [--measure-peak]
    drills data    list | fetch NAME --data-dir DIR          (the only command that downloads)
    drills gpu-check [--results-dir DIR] [--budget S] [--dry-run]   (plan anywhere, run on a GPU)

Filters: ``--area`` (repeatable), ``--task`` (repeatable; an id or a glob such as
``'fundamentals.*'``). Exit status: 0 all passed or skipped, 1 any check failed or
errored, 2 usage errors (unknown task/area/size/device, nonsense option values, an
unwritable --out or --results-dir, unreadable results file), 130 interrupted by Ctrl-C
and 143 by SIGTERM (finished tasks are kept in the run record, marked interrupted).

Console text from tasks (reasons, errors, notes) is printed as text, never as rich markup.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from harness.capabilities import setup_triton_interpreter

setup_triton_interpreter()

from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from harness import capabilities  # noqa: E402
from harness.registry import REGISTRY, RegistryError  # noqa: E402
from harness.results import ResultsError  # noqa: E402
from harness.task import SIZE_PRESETS  # noqa: E402

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
_MARK = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]", "error": "[red]ERROR[/]"}
#: The status column as (plain label, style): padded as text first, then styled.
_STATUS_STYLE = {
    "pass": ("pass", "green"),
    "fail": ("FAIL", "red"),
    "skip": ("skip", "yellow"),
    "error": ("ERROR", "red"),
}


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (the record is marked interrupted), exit status 143."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _status_line(status: str, task_id: str, seconds: float, why: str = "") -> Text:
    """One progress line: the status padded as plain text first, then styled (markup never counts)."""
    label, style = _STATUS_STYLE.get(status, (status, ""))
    line = Text(f"{label:>8}", style=style)
    line.append(f" {task_id:<42} {seconds:6.1f}s")
    if why:
        line.append(f"  {why}", style="dim")
    return line


def _seconds(value: float | None, flag: str, *, example: str) -> None:
    """Refuse NaN, infinity (unless a limit) and values <= 0 for a seconds option."""
    if value is None:
        return
    if math.isnan(value) or value <= 0 or (math.isinf(value) and flag != "--time-limit"):
        raise UsageError(f"{flag} {value}: must be a positive number of seconds, e.g. {flag} {example}")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (None, False) or the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        h = action.help or ""
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS or "default" in h:
            return h
        return super()._get_help_string(action) or ""


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", action="append", metavar="AREA", help="only tasks of this area (repeatable)")
    p.add_argument("--task", action="append", metavar="ID", help="task id or glob, e.g. 'fundamentals.*' (repeatable)")


def _add_run_opts(p: argparse.ArgumentParser, mode: str) -> None:
    _add_filters(p)
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda or cuda:N")
    p.add_argument(
        "--size",
        default=None,
        help=f"size preset: {', '.join(SIZE_PRESETS)} (default: tiny for check, else cpu/gpu by device)",
    )
    p.add_argument("--seed", type=int, default=0, help="base RNG seed; trials use seed, seed+1, ...")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="where run records go (default: results/runs, or $DRILLS_RESULTS_DIR)",
    )
    p.add_argument(
        "--no-isolate",
        action="store_true",
        help="run tasks in this process (faster start, but a crash or hang stops the run)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="S",
        help="wall-clock limit per task, seconds > 0 (default: the task's own, else 180 s for check, "
        "600 s for bench, 780 s for run); a task cut off keeps what it measured",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with real data sets (MNIST, CIFAR, IMDB, ...); sets $DRILLS_DATA_DIR for the tasks",
    )
    if mode == "check":
        p.add_argument("--save", action="store_true", help="also write a run record")
        p.add_argument(
            "--mutants",
            action="store_true",
            help="also run each declared wrong implementation and prove the check fails on it (check strength)",
        )
    else:
        p.add_argument("--no-save", action="store_true", help="do not write a run record")
        p.add_argument(
            "--min-run-time",
            type=float,
            default=0.5,
            metavar="S",
            help="seconds of timing per measurement (> 0)",
        )
        p.add_argument(
            "--timing-mode",
            default="auto",
            choices=["auto", "cold", "warm", "graph", "graph-cold"],
            help="auto: cold-L2 on CUDA, blocked autorange on CPU; cold (cold-L2), warm (warm-L2), graph "
            "(CUDA-graph replay) and graph-cold (replay after an L2 flush) need a CUDA device",
        )
        p.add_argument(
            "--threads",
            type=int,
            default=None,
            metavar="N",
            help="intra-op threads of the benchmarks, 1..cores (default: torch's default); recorded",
        )
        p.add_argument("--remeasure-peak", action="store_true", help="measure this machine's peaks again")
    if mode == "run":
        p.add_argument(
            "--out", type=Path, default=None, help="report file (default: reports/index.html); checked before any task"
        )


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where help is (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="drills", description="torchdrills: PyTorch performance drills — correctness checks and timed benchmarks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    p = sub.add_parser("list", help="list registered tasks")
    _add_filters(p)
    p.add_argument(
        "--missing", action="store_true", help="list the catalogue rows that no task registers yet (id, seed, title)"
    )
    p.add_argument("--format", choices=["table", "json"], default="table")
    for mode, text in (
        ("check", "run correctness checks (tiny sizes)"),
        ("bench", "run timed benchmarks"),
        ("run", "check + bench + HTML report"),
    ):
        _add_run_opts(sub.add_parser(mode, help=text), mode)
    p = sub.add_parser("report", help="render the HTML report from run records")
    p.add_argument(
        "runs",
        nargs="*",
        type=Path,
        help="run record files (default: the newest complete run or bench record of this machine)",
    )
    p.add_argument("--results-dir", type=Path, default=None, help="where run records are found (default: results/runs)")
    p.add_argument("--out", type=Path, default=None, help="output file (default: reports/index.html)")
    p = sub.add_parser("compare", help="compare two run records, judged against each measurement's noise")
    p.add_argument("run_a", type=Path, help="run record A (before)")
    p.add_argument("run_b", type=Path, help="run record B (after); must be another file")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--force", action="store_true", help="compare records of different machines/torch/threads")
    from harness.timer_check import add_arguments as _timer_check_args

    _timer_check_args(sub.add_parser("timer-check", help="self-test of the timer: quiet, then beside busy processes"))
    p = sub.add_parser(
        "data", help="where each data set comes from; fetch the real ones (the only command that downloads)"
    )
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_OneLineParser)
    dsub.required = True
    q = dsub.add_parser("list", help="each data set and the source a task would use now")
    q.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder to look in (default: $DRILLS_DATA_DIR); lists what is missing",
    )
    q = dsub.add_parser("fetch", help="download a data set with SHA-256 verification into DIR/<name>/")
    q.add_argument("name", help="data set name (see `drills data list`)")
    q.add_argument("--data-dir", type=Path, default=None, help="destination (default: $DRILLS_DATA_DIR)")
    p = sub.add_parser("gpu-check", help="on a GPU machine: every task with a GPU part, at GPU sizes, in a time budget")
    p.add_argument("--results-dir", type=Path, default=None, help="where the run record goes (e.g. $OUT on a lent GPU)")
    p.add_argument(
        "--budget",
        type=float,
        default=480.0,
        metavar="S",
        help="total seconds for the tasks; tasks that no longer fit are skipped (default 480)",
    )
    p.add_argument("--task", action="append", metavar="ID", help="only these ids/globs, run in the order given")
    p.add_argument("--min-run-time", type=float, default=0.3, metavar="S")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan (order, budgets, what each measures); any machine"
    )
    p.add_argument("--format", choices=["table", "json"], default="table", help="--dry-run output format")
    p.add_argument(
        "--fresh", action="store_true", help="do not resume from the newest gpu-check record in --results-dir"
    )
    p = sub.add_parser("env", help="machine fingerprint, capabilities and measured peaks")
    p.add_argument("--measure-peak", action="store_true", help="measure (or re-measure) peak GFLOP/s and GB/s")
    p.add_argument("--device", default="auto")
    p.add_argument("--format", choices=["table", "json"], default="table")
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Every subcommand (also those added later) gets a description and shows its defaults."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sp in action.choices.items():
                sp.formatter_class = _HelpFormatter
                if not sp.description:
                    sp.description = helps.get(name)
                for a in sp._actions:
                    if a.help is None and a.default not in (None, False, argparse.SUPPRESS):
                        a.help = "(default: %(default)s)"
                _describe(sp)


def _broken_file_for(task_id: str) -> tuple[str, str] | None:
    """(file, last traceback line) of a task file that failed to import and names ``task_id``."""
    for path, tb in REGISTRY.load_errors.items():
        try:
            src = Path(path).read_text(errors="replace")
        except OSError:
            continue
        if f'"{task_id}"' in src or f"'{task_id}'" in src:
            return path, tb.strip().splitlines()[-1]
    return None


def _select(args) -> list:
    areas = getattr(args, "area", None)
    for pat in getattr(args, "task", None) or []:
        if any(ch in pat for ch in "*?[") or pat in REGISTRY:
            if areas and any(ch in pat for ch in "*?["):
                import fnmatch

                if not any(fnmatch.fnmatchcase(c.id, pat) for c in REGISTRY.all() if c.area in areas):
                    raise UsageError(
                        f"no task of area {', '.join(areas)} matches {pat!r}; drop --area or see `drills list`"
                    )
            continue
        broken = _broken_file_for(pat)
        if broken:
            raise UsageError(f"task file {broken[0]} failed to import: {broken[1]}")
    try:
        tasks = REGISTRY.select(tasks=args.task, areas=areas)
    except RegistryError as e:
        raise UsageError(str(e)) from None
    for path, tb in REGISTRY.load_errors.items():
        line = Text("task file failed to import: ", style="red")
        line.append(f"{path}\n{tb.strip().splitlines()[-1]}", style="")
        err_console.print(line)
    return tasks


def _task_json(cls) -> dict[str, Any]:
    return {
        "id": cls.id,
        "area": cls.area,
        "seed": cls.seed,
        "title": cls.title,
        "kind": cls.kind,
        "requires": list(cls.requires),
        "implementations": [s.name for s in cls.implementations()],
        "baseline": cls.baseline(),
        "sizes": sorted(cls.sizes),
        "uses_gpu": cls.uses_gpu(),
        "claims": [c.text for c in cls.claims],
        "mutants": [{"name": m.name, "what": m.what} for m in cls.mutants],
        "metrics": dict(cls.metrics),
    }


def _list_missing(args) -> int:
    """``drills list --missing``: the catalogue rows without a task (harness/catalogue.toml)."""
    from harness import catalogue

    try:
        rows = catalogue.missing_entries([c.id for c in REGISTRY.all()], areas=args.area, patterns=args.task)
    except catalogue.CatalogueError as e:
        raise UsageError(str(e)) from None
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=1))
        return EXIT_OK
    t = Table(title=f"{len(rows)} catalogue tasks not registered", show_lines=False)
    for col in ("seed", "id", "title"):
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(row.seed, row.id, Text(row.title))
    console.print(t)
    console.print(catalogue.coverage([c.id for c in REGISTRY.all()]).summary)
    return EXIT_OK


def cmd_list(args) -> int:
    if args.missing:
        return _list_missing(args)
    tasks = _select(args)
    if args.format == "json":
        print(json.dumps([_task_json(c) for c in tasks], indent=1))
        return EXIT_OK
    t = Table(title=f"{len(tasks)} tasks", show_lines=False)
    for col in ("seed", "id", "kind", "requires", "implementations"):
        t.add_column(col, overflow="fold")
    for c in tasks:
        t.add_row(
            c.seed,
            c.id,
            c.kind,
            ",".join(c.requires) or "-",
            ", ".join(s.name + ("*" if s.baseline else "") for s in c.implementations()),
        )
    console.print(t)
    console.print("* baseline")
    from harness.catalogue import coverage

    cov = coverage([c.id for c in REGISTRY.all()])
    console.print(f"{cov.summary} (drills list --missing shows the rest)")
    return EXIT_OK


def _bench_threads(args, mode: str) -> int | None:
    """``--threads`` checked (1..cores); prints the load notice of harness.timing for bench/run."""
    from harness.timing import available_cores, load_notice

    n = getattr(args, "threads", None)
    if n is not None and not 1 <= n <= (os.cpu_count() or 1):
        raise UsageError(f"--threads {n}: give 1 to {os.cpu_count()} (the cores of this machine)")
    if mode == "check":
        return None
    import torch

    n = n or torch.get_num_threads()
    notice = load_notice(n)
    if notice:
        console.print(Text(notice, style="yellow"))
    elif available_cores() < n:
        console.print(Text(f"{n} threads on {available_cores()} cores: oversubscribed", style="yellow"))
    return n


def _run(args, mode: str) -> int:
    from harness import fingerprint as fpmod
    from harness.peak import load_or_measure
    from harness.results import RunWriter, check_writable_dir, default_runs_dir
    from harness.runner import Runner, resolve_device

    if args.size is not None and args.size not in SIZE_PRESETS:
        raise UsageError(f"unknown size {args.size!r}; valid sizes: {', '.join(SIZE_PRESETS)}")
    _seconds(args.time_limit, "--time-limit", example="300")
    _seconds(getattr(args, "min_run_time", None), "--min-run-time", example="0.5")
    threads = _bench_threads(args, mode)
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    from harness.gpu_check import drop_triton_interpret

    drop_triton_interpret(device)  # an inherited TRITON_INTERPRET must not reach a CUDA run's worker
    timing_mode = getattr(args, "timing_mode", "auto")
    if timing_mode != "auto" and device.type != "cuda":
        raise UsageError(
            f"--timing-mode {timing_mode} needs a CUDA device (this run is on {device}); "
            "drop it (auto times CPU code), or use --device cuda on a GPU machine"
        )
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            raise UsageError(
                f"--data-dir {args.data_dir}: no such folder (create it, or drop the flag to use the embedded data)"
            )
        os.environ["DRILLS_DATA_DIR"] = str(args.data_dir.resolve())  # workers inherit DRILLS_* variables
    save = args.save if mode == "check" else not args.no_save
    # the output places are checked before anything runs (not after an hour of benchmarks)
    if mode == "run":
        from harness.report.render import default_out

        _check_report_out(args.out or default_out())
    if save:
        label = "--results-dir" if args.results_dir else "results folder"
        check_writable_dir(args.results_dir or default_runs_dir(), label)
    tasks = _select(args)
    if not tasks:
        raise UsageError("no task selected; see `drills list`")
    peak = None
    if mode != "check":
        console.print(f"peak of this machine ({device.type}) ...", end=" ")
        peak = load_or_measure(device, remeasure=args.remeasure_peak, threads=threads)  # at the benchmarks thread count
        console.print(
            f"{peak['matmul_gflops']:.0f} GFLOP/s matmul, {peak['copy_gbps']:.1f} GB/s copy{_peak_note(peak)}"
        )
    writer = RunWriter(
        mode=mode,
        device=str(device),
        size=args.size,
        argv=sys.argv[1:],
        fingerprint=fpmod.fingerprint(bench_threads=threads),
        peak=peak,
        runs_dir=args.results_dir,
        save=save,
        capabilities=capabilities.detect(),
        on_warning=lambda msg: err_console.print(Text(f"warning: {msg}", style="yellow")),
    )
    if writer.path is not None:  # a worker orphaned by a SIGKILL closes the record (harness.runner)
        os.environ["DRILLS_RUN_RECORD"] = str(writer.path)
    runner = Runner(
        mode=mode,
        device=device,
        size=args.size,
        rng_seed=args.seed,
        peak=peak,
        min_run_time_s=getattr(args, "min_run_time", 0.5),
        timing_mode=timing_mode,
        isolate=not args.no_isolate,
        time_limit_s=args.time_limit,
        mutants=getattr(args, "mutants", False),
        threads=threads,
    )
    counts = {s: 0 for s in ("pass", "fail", "skip", "error")}
    bad: list[dict[str, Any]] = []
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )

    def on_result(entry: dict[str, Any]) -> None:
        writer.add(entry)
        st = entry["status"]
        counts[st] += 1
        why = str(entry.get("reason", ""))[:160] if st != "pass" else ""
        progress.console.print(_status_line(st, entry["id"], entry.get("duration_s", 0), why))
        if st in ("fail", "error"):
            bad.append(entry)
        progress.advance(bar)

    def on_start(cls) -> None:
        progress.update(bar, description=cls.id)

    interrupted: KeyboardInterrupt | None = None
    with progress:
        bar = progress.add_task(mode, total=len(tasks))
        try:
            runner.run(tasks, on_result, on_start)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated)
            interrupted = stop
    writer.finish("interrupted" if interrupted else "complete")
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    where = f"  record: {writer.path}" if writer.path else ("  record: not written (see above)" if save else "")
    console.print(Text(f"{mode}: {summary or 'nothing ran'}{where}"), soft_wrap=True)
    if getattr(args, "mutants", False):  # the check strength --mutants was asked for
        console.print(Text(_mutants_summary(writer.data["tasks"].values())), soft_wrap=True)
    if mode != "check":  # how far to trust the timings (harness.timing)
        from harness.timing import contention_summary

        note = contention_summary(writer.data["tasks"].values())
        if note:
            console.print(Text(note, style="yellow"), soft_wrap=True)
    for b in bad:
        line = Text(b["status"], style="red")
        line.append(f" {b['id']}: {b.get('reason', '')}")
        console.print(line)
        if b.get("error"):
            console.print(Text(str(b["error"]), style="dim"))
    for msg in writer.problems:
        err_console.print(Text(f"warning: {msg}", style="yellow"))
    if interrupted:
        n = sum(counts.values())
        if not save:
            kept = "nothing was saved (no run record asked for)"
        elif writer.path is None:
            kept = f"{n} finished task(s) could not be written (see above)"
        elif n:
            kept = f"{n} finished task(s) are kept in the run record {writer.path}"
        else:
            kept = f"no task had finished; the run record {writer.path} says so"
        err_console.print(Text(f"{'terminated' if isinstance(interrupted, Terminated) else 'interrupted'}: {kept}"))
        return EXIT_TERMINATED if isinstance(interrupted, Terminated) else EXIT_INTERRUPTED
    if mode == "run":
        _render_after_run(writer, args)
    return EXIT_FAIL if bad else EXIT_OK


def _check_report_out(path: Path) -> Path:
    """``--out`` of ``run``/``report``: writable, and never an existing file other than a
    torchdrills report (``drills report --out README.md`` used to replace the README).

    Raises:
        ResultsError: not writable (see ``check_writable_file``), or an existing non-empty
            file without the report's ``<title>`` in its first 4 KiB.
    """
    from harness.results import check_writable_file

    path = check_writable_file(path, "--out")
    if path.is_file() and path.stat().st_size:
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError as e:
            raise ResultsError(f"--out {path}: cannot read the existing file ({e}); give another file") from e
        if b"<title>torchdrills report</title>" not in head:
            raise ResultsError(
                f"--out {path}: exists and is not a torchdrills report; give a new file name or remove it first"
            )
    return path


def _peak_note(peak: dict[str, Any]) -> str:
    """The caveat printed after the peak: one measured beside busy processes is a lower bound."""
    if not peak.get("loaded"):
        return ""
    return f" (measured under load {peak.get('load_avg_1m', '?')}: a lower bound, % of peak reads high)"


def _mutants_summary(entries) -> str:
    """One line for ``drills check --mutants``: mutants caught / declared over the tasks run,
    and how many tasks declare none (their check strength is unknown)."""
    entries = list(entries)
    ran = [m for e in entries for m in (e.get("mutants") or [])]
    caught = sum(1 for m in ran if m.get("caught"))
    without = sum(1 for e in entries if e.get("status") == "pass" and not e.get("mutants"))
    line = f"mutants: {caught} of {len(ran)} caught"
    if without:
        line += f"; {without} passing task(s) declare none"
    return line


def _render_after_run(writer, args) -> None:
    """The report of the run just made: from its file, or from the in-memory record when
    there is none (``--no-save``, or no folder could be written)."""
    import tempfile

    from harness.report import render_report
    from harness.results import ResultsError, atomic_write_json

    try:
        if writer.path is not None:
            out = render_report([writer.path], out=args.out, runs_dir=args.results_dir)
            console.print(Text(f"report: {out}"), soft_wrap=True)
            return
        with tempfile.TemporaryDirectory(prefix="drills-report-") as tmp:
            p = Path(tmp) / f"{writer.run_id}.json"
            atomic_write_json(p, writer.data)
            out = render_report([p], out=args.out, runs_dir=args.results_dir)
        why = "--no-save" if not writer.save else "it could not be saved"
        console.print(Text(f"report: {out} (from the in-memory record: {why})"), soft_wrap=True)
    except (OSError, ResultsError) as e:
        err_console.print(Text(f"report not written: {e}", style="red"))


def cmd_report(args) -> int:
    from harness.fingerprint import machine_id
    from harness.report import render_report
    from harness.report.render import default_out
    from harness.results import load_run, newest_full_run

    out = _check_report_out(args.out or default_out())
    if args.results_dir is not None and args.results_dir.exists() and not args.results_dir.is_dir():
        raise UsageError(f"--results-dir {args.results_dir}: is a file, not a folder of run records")
    runs = list(args.runs)
    for r in runs:
        load_run(r)  # validate early: a bad file is a usage error naming it
    if not runs:
        found, skipped = newest_full_run(args.results_dir, machine_id())
        for msg in skipped:
            err_console.print(Text(f"warning: {msg}", style="yellow"))
        if found is not None:
            runs = [found]
            console.print(
                Text(f"using {found} (the newest complete run or bench record of this machine)"), soft_wrap=True
            )
    out = render_report(runs, out=out, runs_dir=args.results_dir)
    console.print(
        Text(f"report: {out}" + ("" if runs else " (no complete run or bench record found: the page says so)")),
        soft_wrap=True,
    )
    return EXIT_OK


def cmd_timer_check(args) -> int:
    """``drills timer-check``: harness.timer_check (quiet, then beside busy processes)."""
    from harness.timer_check import run_cli

    return run_cli(args, console)


def cmd_compare(args) -> int:
    from harness.compare import compare_runs, print_comparison

    try:
        same = args.run_a.resolve() == args.run_b.resolve() or args.run_a.samefile(args.run_b)
    except OSError:
        same = False
    if same:
        raise UsageError(f"{args.run_a} and {args.run_b} are the same file; compare two different runs")
    result = compare_runs(args.run_a, args.run_b, force=args.force, full=True)
    if args.format == "json":
        print(json.dumps(result, indent=1))
    else:
        print_comparison(result, console)
    return EXIT_OK


def cmd_data(args) -> int:
    """``drills data list`` / ``drills data fetch NAME``: the one place that may download."""
    from harness.data import sources

    if args.data_command == "list":
        from harness.data.errors import DataNotFoundError

        if args.data_dir is not None and not args.data_dir.is_dir():
            raise UsageError(f"--data-dir {args.data_dir}: no such folder")
        missing = []
        for name in sources.DATASETS:
            try:
                where = str(sources.resolve(name, args.data_dir))
            except DataNotFoundError:
                missing.append(name)
                how = (
                    f"fetch: drills data fetch {name} --data-dir {args.data_dir}"
                    if name in sources.REMOTE
                    else f"put its files in {args.data_dir}/{name}/"
                )
                where = f"missing from {args.data_dir} ({how})"
            console.print(Text(f"{name:<16} {where}"), soft_wrap=True)
        if missing:
            console.print(
                Text(
                    f"{len(missing)} data set(s) missing from {args.data_dir}: {', '.join(missing)}; "
                    "tasks that use them fail with this --data-dir (without it they use embedded or synthetic data)"
                ),
                soft_wrap=True,
            )
        return EXIT_OK
    if args.name not in sources.REMOTE:
        raise UsageError(f"cannot fetch {args.name!r}; fetchable: {', '.join(sorted(sources.REMOTE))}")
    dest = args.data_dir or sources.data_root()
    if dest is None:
        raise UsageError("where to? pass --data-dir DIR or set DRILLS_DATA_DIR")
    path = sources.fetch(args.name, dest)
    console.print(f"{args.name}: verified files in {path}; tasks use them with --data-dir {dest}")
    return EXIT_OK


def cmd_gpu_check(args) -> int:
    """On a lent GPU: the headline measurements first, each task in its own budget (harness/gpu_check.py)."""
    from harness import gpu_check

    return gpu_check.cmd(args, console=console, err_console=err_console, usage_error=UsageError, marks=_MARK)


def cmd_env(args) -> int:
    from harness.fingerprint import fingerprint
    from harness.peak import load_or_measure, peak_path
    from harness.runner import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    fp = fingerprint()
    caps = capabilities.detect()
    path = peak_path(device)
    peak = (
        load_or_measure(device, remeasure=True)
        if args.measure_peak
        else (json.loads(path.read_text()) if path.exists() else None)
    )
    if args.format == "json":
        print(json.dumps({"fingerprint": fp, "capabilities": caps, "peak": peak}, indent=1))
        return EXIT_OK
    t = Table(title="machine", show_header=False)
    for k, v in fp.items():
        t.add_row(Text(k), Text(json.dumps(v) if isinstance(v, (dict, list)) else str(v)))
    console.print(t)
    c = Table(title="capabilities")
    c.add_column("name")
    c.add_column("present")
    c.add_column("what")
    for k, v in caps.items():
        c.add_row(
            Text(k), Text("yes", style="green") if v else Text("no", style="yellow"), Text(capabilities.DESCRIPTIONS[k])
        )
    console.print(c)
    console.print(
        f"peak ({device.type}): " + (json.dumps(peak) if peak else "not measured yet; `drills env --measure-peak`")
    )
    return EXIT_OK


COMMANDS = {
    "list": cmd_list,
    "check": lambda a: _run(a, "check"),
    "bench": lambda a: _run(a, "bench"),
    "run": lambda a: _run(a, "run"),
    "report": cmd_report,
    "compare": cmd_compare,
    "env": cmd_env,
    "gpu-check": cmd_gpu_check,
    "timer-check": cmd_timer_check,
    "data": cmd_data,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with_sigterm = sys.argv and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
    if with_sigterm:  # SIGTERM like Ctrl-C: record marked interrupted, worker group ended
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ResultsError) as e:
        err_console.print(Text(f"drills {args.command}: error: {e}"))
        return EXIT_USAGE
    except Terminated:
        err_console.print("terminated")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return EXIT_INTERRUPTED
    finally:
        os.environ.pop("DRILLS_RUN_RECORD", None)
        if with_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
