"""``reports/index.html``: one self-contained page from run records.

Sections: (1) summary by area with catalogue coverage, every claim of the run and check
strength per area, (2) a card per task of the newest run, (3) history across the runs of
the same machine with regressions judged on raw samples, (4) the environment with the
timer self-test. plotly.js is inlined once (no CDN, no external font or stylesheet; a
Content-Security-Policy blocks any request), figures are JSON drawn on demand (see
:mod:`harness.report.figures`), pictures are inline ``data:`` PNGs.

The newest of the given runs (by start time, then run id) is the main one. History is
every run of its machine: the other given files of that machine plus
``<runs_dir>/<machine_id>/*.json``, oldest first, up to and including the main run.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.fingerprint import REPO_ROOT
from harness.report import assets
from harness.report.cards import area_order, task_cards
from harness.report.catalogue import coverage
from harness.report.figures import Figures
from harness.report.history import history_section
from harness.report.html import STATUS_ORDER, esc, para, slug
from harness.report.sections import coverage_html, environment_section, summary_section
from harness.results import ResultsError, atomic_write_text, default_runs_dir, find_runs, load_run

#: Most runs the history reads (the newest ones); keeps rendering fast on a long history.
MAX_HISTORY = 30


def default_out() -> Path:
    return REPO_ROOT / "reports" / "index.html"


def run_order(run: dict[str, Any]) -> tuple[str, str]:
    return (str(run.get("started_utc") or ""), str(run["run_id"]))


def collect_history(
    main: dict[str, Any], given: list[dict[str, Any]], runs_dir: Path | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Runs of ``main``'s machine up to ``main`` (oldest first), and notes on what was left out."""
    machine = (main.get("fingerprint") or {}).get("machine_id")
    notes: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    for r in given:
        if (r.get("fingerprint") or {}).get("machine_id") == machine:
            by_id.setdefault(r["run_id"], r)
        else:
            notes.append(
                f"{r['_path']}: left out of the history, it was measured on another machine "
                f"({(r.get('fingerprint') or {}).get('machine_id')})."
            )
    root = runs_dir or default_runs_dir()
    # file names are run ids, which start with the UTC start time: read only what is shown
    every = find_runs(root, machine) if machine else []
    files = [p for p in every if p.stem <= main["run_id"]]
    if len(every) > len(files):
        notes.append(
            f"{len(every) - len(files)} file(s) newer than the main run are left out "
            "(render the newest run to see them)."
        )
    if len(files) > MAX_HISTORY:
        notes.append(f"the history reads the newest {MAX_HISTORY} of {len(files)} run files.")
    for p in files[-MAX_HISTORY:]:
        if p.stem in by_id:
            continue
        try:
            r = load_run(p)
        except ResultsError as e:  # a given file must be valid; a stray one in the history is only noted
            notes.append(f"skipped in the history: {e}")
            continue
        by_id.setdefault(r["run_id"], r)
    runs = sorted((r for r in by_id.values() if run_order(r) <= run_order(main)), key=run_order)
    return runs[-MAX_HISTORY:], notes


def _nav(run: dict[str, Any] | None) -> str:
    links = [
        '<a href="#summary">summary</a>',
        '<a href="#tasks">tasks</a>',
        '<a href="#history">history</a>',
        '<a href="#environment">environment</a>',
    ]
    if run is None:
        return f"<nav>{' '.join(links)}</nav>"
    areas = sorted(
        {t.get("area") or tid.split(".", 1)[0] for tid, t in run["tasks"].items()}, key=lambda a: (area_order(a), a)
    )
    area_links = " ".join(f'<a href="#area-{slug(a)}">{esc(a)}</a>' for a in areas)
    filters = " ".join(
        f'<label><input type="checkbox" class="status-filter" value="{s}" checked> {s}</label>' for s in STATUS_ORDER
    )
    return (
        f'<nav>{" ".join(links)} <span class="sep">|</span> {area_links} <span class="sep">|</span> '
        '<button id="expand-all" type="button">expand all</button>'
        '<button id="collapse-all" type="button">collapse all</button> '
        f'<span class="sep">|</span> show: {filters}</nav>'
    )


def page(title: str, subtitle: str, nav: str, body: str, *, plotly: bool, footer: str) -> str:
    js = ""
    if plotly:
        from plotly.offline import get_plotlyjs

        js = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{assets.CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{assets.CSS}</style><script>{assets.ERRORS_JS}</script>{js}</head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>{nav}<main>{body}</main>"
        f"<footer>{esc(footer)}</footer><script>{assets.JS}</script></body></html>\n"
    )


def build_page(
    main: dict[str, Any],
    history: list[dict[str, Any]],
    notes: list[str],
    started: float,
    runs_dir: Path | None = None,
) -> str:
    figs = Figures()
    cov = coverage(list(main["tasks"]))
    fp = main.get("fingerprint") or {}
    machine = fp.get("machine_id") or "unknown machine"
    sections = [
        ("summary", "Summary by area", summary_section(main, cov, figs)),
        ("tasks", f"Tasks ({len(main['tasks'])})", task_cards(main, figs)),
        ("history", f"History on {machine}", history_section(history, figs, machine=machine, notes=notes)),
        ("environment", "Environment", environment_section(main, runs_dir)),
    ]
    body = "".join(f'<section id="{sid}"><h2>{esc(h)}</h2>{html}</section>' for sid, h, html in sections)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = (
        f"rendered {now} from {main.get('_path', main['run_id'])} in {time.perf_counter() - started:.1f} s; "
        f"{figs.count} charts"
    )
    sub = f"run {main['run_id']} on {machine} ({main.get('device') or '?'}), {main.get('status', '?')}"
    return page("torchdrills report", sub, _nav(main), body, plotly=figs.count > 0, footer=footer)


def no_runs_page(runs_dir: Path | None) -> str:
    root = runs_dir or default_runs_dir()
    body = (
        '<section id="summary"><h2>No runs found</h2>'
        + para(f"No run records were given and none was found under {root} for this machine.")
        + "<p>Make one with <code>drills run</code> (checks, benchmarks and this report), or "
        "<code>drills check</code> / <code>drills bench</code> and then <code>drills report</code>. "
        "Run records go to <code>results/runs/&lt;machine&gt;/</code>.</p>" + coverage_html(coverage([])) + "</section>"
    )
    return page("torchdrills report", "no runs", _nav(None), body, plotly=False, footer="no run records")


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old page or the new one, never half."""
    atomic_write_text(path, text)


def render_report(
    runs: Sequence[str | Path], out: str | Path | None = None, runs_dir: str | Path | None = None
) -> Path:
    """Render the report of ``runs`` to ``out`` (default ``<repo>/reports/index.html``).

    Args:
        runs: run record files; the newest is the main run, the others feed the history.
            Empty: a page saying no runs were found and how to make one.
        out: the HTML file to write (its folder is created).
        runs_dir: where the history's runs are found (default ``results/runs`` or
            ``$DRILLS_RESULTS_DIR``).

    Returns:
        The path written.

    Raises:
        ResultsError: a given file is missing, malformed or not a run record (names it).
    """
    started = time.perf_counter()
    out = Path(out) if out else default_out()
    rd = Path(runs_dir) if runs_dir else None
    loaded = [load_run(p) for p in runs]
    if not loaded:
        text = no_runs_page(rd)
    else:
        main = max(loaded, key=run_order)
        history, notes = collect_history(main, loaded, rd)
        text = build_page(main, history, notes, started, rd)
    write_atomic(out, text)
    return out
