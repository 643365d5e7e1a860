"""The ``drills`` command line.

    drills list    [--area A] [--task T] [--format table|json]
    drills check   [filters] [--device D] [--size S]         correctness only (tiny)
    drills bench   [filters] [--device D] [--size S]         timing only
    drills run     [filters] [--device D] [--size S]         check + bench + report
    drills report  [RUN.json ...] [--out reports/index.html]
    drills compare RUN_A.json RUN_B.json
    drills env     [--measure-peak]
    drills data    list | fetch NAME --data-dir DIR          (the only command that downloads)
    drills gpu-check [--results-dir DIR] [--budget S] [--dry-run]   (plan anywhere, run on a GPU)

Filters: ``--area`` (repeatable), ``--task`` (repeatable; an id or a glob such as
``'fundamentals.*'``). Exit status: 0 all passed or skipped, 1 any check failed or
errored, 2 usage errors (unknown task/area/size/device, unreadable results file),
130 interrupted (finished tasks are kept in the run record).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

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

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_MARK = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]", "error": "[red]ERROR[/]"}


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", action="append", metavar="AREA", help="only tasks of this area (repeatable)")
    p.add_argument("--task", action="append", metavar="ID", help="task id or glob, e.g. 'fundamentals.*' (repeatable)")


def _add_run_opts(p: argparse.ArgumentParser, mode: str) -> None:
    _add_filters(p)
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda or cuda:N (default: auto)")
    p.add_argument(
        "--size",
        default=None,
        help=f"size preset: {', '.join(SIZE_PRESETS)} (default: tiny for check, else cpu/gpu by device)",
    )
    p.add_argument("--seed", type=int, default=0, help="base RNG seed; trials use seed, seed+1, ... (default 0)")
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
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="wall-clock limit per task, seconds")
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
            help="seconds of timing per measurement (default 0.5)",
        )
        p.add_argument(
            "--timing-mode",
            default="auto",
            choices=["auto", "cold", "warm", "graph"],
            help="CUDA: cold-L2 (default via auto), warm-L2, or CUDA-graph replay",
        )
        p.add_argument("--remeasure-peak", action="store_true", help="measure this machine's peaks again")
    if mode == "run":
        p.add_argument("--out", type=Path, default=None, help="report file (default: reports/index.html)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drills", description="torchdrills: PyTorch performance drills — correctness checks and timed benchmarks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    p.add_argument("runs", nargs="*", type=Path, help="run record files (default: the newest run of this machine)")
    p.add_argument("--results-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="output file (default: reports/index.html)")
    p = sub.add_parser("compare", help="compare two run records, judged against each measurement's noise")
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = sub.add_parser(
        "data", help="where each data set comes from; fetch the real ones (the only command that downloads)"
    )
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    q = dsub.add_parser("list", help="each data set and the source a task would use now")
    q.add_argument("--data-dir", type=Path, default=None)
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
    return parser


def _select(args) -> list:
    try:
        tasks = REGISTRY.select(tasks=args.task, areas=args.area)
    except RegistryError as e:
        raise UsageError(str(e)) from None
    for path, tb in REGISTRY.load_errors.items():
        err_console.print(f"[red]task file failed to import:[/] {path}\n{tb.strip().splitlines()[-1]}")
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
        print(json.dumps([dataclasses.asdict(e) for e in rows], indent=1))
        return EXIT_OK
    t = Table(title=f"{len(rows)} catalogue tasks not registered", show_lines=False)
    for col in ("seed", "id", "title"):
        t.add_column(col, overflow="fold")
    for e in rows:
        t.add_row(e.seed, e.id, Text(e.title))
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


def _run(args, mode: str) -> int:
    from harness import fingerprint as fpmod
    from harness.peak import load_or_measure
    from harness.results import RunWriter
    from harness.runner import Runner, resolve_device

    if args.size is not None and args.size not in SIZE_PRESETS:
        raise UsageError(f"unknown size {args.size!r}; valid sizes: {', '.join(SIZE_PRESETS)}")
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    from harness.gpu_check import drop_triton_interpret

    drop_triton_interpret(device)  # an inherited TRITON_INTERPRET must not reach a CUDA run's worker
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            raise UsageError(
                f"--data-dir {args.data_dir}: no such folder (create it, or drop the flag to use the embedded data)"
            )
        os.environ["DRILLS_DATA_DIR"] = str(args.data_dir.resolve())  # workers inherit DRILLS_* variables
    tasks = _select(args)
    if not tasks:
        raise UsageError("no task selected; see `drills list`")
    peak = None
    if mode != "check":
        console.print(f"peak of this machine ({device.type}) ...", end=" ")
        peak = load_or_measure(device, remeasure=args.remeasure_peak)
        console.print(f"{peak['matmul_gflops']:.0f} GFLOP/s matmul, {peak['copy_gbps']:.1f} GB/s copy")
    save = args.save if mode == "check" else not args.no_save
    writer = RunWriter(
        mode=mode,
        device=str(device),
        size=args.size,
        argv=sys.argv[1:],
        fingerprint=fpmod.fingerprint(),
        peak=peak,
        runs_dir=args.results_dir,
        save=save,
        capabilities=capabilities.detect(),
    )
    runner = Runner(
        mode=mode,
        device=device,
        size=args.size,
        rng_seed=args.seed,
        peak=peak,
        min_run_time_s=getattr(args, "min_run_time", 0.5),
        timing_mode=getattr(args, "timing_mode", "auto"),
        isolate=not args.no_isolate,
        time_limit_s=args.time_limit,
        mutants=getattr(args, "mutants", False),
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
        why = f"  [dim]{entry.get('reason', '')[:160]}[/]" if st != "pass" else ""
        progress.console.print(f"{_MARK[st]:>22} {entry['id']:<42} {entry.get('duration_s', 0):6.1f}s{why}")
        if st in ("fail", "error"):
            bad.append(entry)
        progress.advance(bar)

    def on_start(cls) -> None:
        progress.update(bar, description=cls.id)

    interrupted = False
    with progress:
        bar = progress.add_task(mode, total=len(tasks))
        try:
            runner.run(tasks, on_result, on_start)
        except KeyboardInterrupt:
            interrupted = True
    writer.finish("interrupted" if interrupted else "complete")
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(f"{mode}: {summary or 'nothing ran'}" + (f"  record: {writer.path}" if save else ""))
    for e in bad:
        console.print(f"[red]{e['status']}[/] {e['id']}: {e.get('reason', '')}")
        if e.get("error"):
            console.print(f"[dim]{e['error']}[/]")
    if interrupted:
        err_console.print("interrupted: finished tasks are kept in the run record")
        return EXIT_INTERRUPTED
    if mode == "run" and save:
        from harness.report import render_report

        out = render_report([writer.path], out=args.out, runs_dir=args.results_dir)
        console.print(f"report: {out}")
    return EXIT_FAIL if bad else EXIT_OK


def cmd_report(args) -> int:
    from harness.fingerprint import machine_id
    from harness.report import render_report
    from harness.results import find_runs, load_run

    runs = list(args.runs)
    for r in runs:
        load_run(r)  # validate early: a bad file is a usage error naming it
    if not runs:
        found = find_runs(args.results_dir, machine_id())
        runs = found[-1:] if found else []
    out = render_report(runs, out=args.out, runs_dir=args.results_dir)
    console.print(f"report: {out}" + ("" if runs else " (no runs found: the page says so)"))
    return EXIT_OK


def cmd_compare(args) -> int:
    from harness.compare import compare_runs, print_comparison

    rows = compare_runs(args.run_a, args.run_b)
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        print_comparison(rows, console)
    return EXIT_OK


def cmd_data(args) -> int:
    """``drills data list`` / ``drills data fetch NAME``: the one place that may download."""
    from harness.data import sources

    if args.data_command == "list":
        for name in sources.DATASETS:
            console.print(f"{name:<16} {sources.resolve(name, args.data_dir)}")
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
        t.add_row(k, json.dumps(v) if isinstance(v, (dict, list)) else str(v))
    console.print(t)
    c = Table(title="capabilities")
    c.add_column("name")
    c.add_column("present")
    c.add_column("what")
    for k, v in caps.items():
        c.add_row(k, "[green]yes[/]" if v else "[yellow]no[/]", capabilities.DESCRIPTIONS[k])
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
    "data": cmd_data,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ResultsError) as e:
        err_console.print(f"drills {args.command}: error: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
