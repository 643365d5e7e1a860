"""One card per task of the main run, grouped by area in catalogue order (``AREAS``).

A card shows what the run record holds for the task (``harness.context.TaskRecord``):
status and reason, the headline (the task's first claim with its value and verdict), the
lesson (the task's reStructuredText docstring rendered by docutils, :mod:`.rst`), claims
and check strength (:mod:`.verdicts`), check results with their tolerances, skipped
parts, measurements (implementations vs baseline, scaling across configs, % of peak;
noisy, contended and suspect rows flagged), metrics, curves, pictures (:mod:`.pictures`),
tables, notes and warnings.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.registry import AREAS
from harness.report import figures as F
from harness.report import verdicts
from harness.report.html import badge, details, esc, fmt, kv_table, para, slug, table, ul
from harness.report.pictures import pictures_html
from harness.report.rst import render_rst

#: Measurement columns in display order; any other column follows these.
MEAS_COLS = (
    "impl",
    "config",
    "dtype",
    "median_ms",
    "iqr_ms",
    "min_ms",
    "n_samples",
    "n_preempted",
    "cpu_wall_ratio",
    "noisy",
    "contended",
    "waits",
    "speedup_vs_baseline",
    "gflops",
    "pct_peak_flops",
    "gbps",
    "pct_peak_bw",
    "pct_peak_suspect",
)
#: Boolean measurement flags and what a set flag reads as in the table (unset: blank).
FLAGS = {
    "noisy": "NOISY",
    "contended": "CONTENDED",
    "waits": "waits by design",
    "pct_peak_suspect": "SUSPECT",
}
#: Columns kept out of the table: raw samples stay in the JSON record.
MEAS_HIDDEN = ("samples_ms", "number_per_sample", "mode")
#: Rows of a ctx.table shown before "N more rows" (keeps the page light).
MAX_TABLE_ROWS = 200
#: Runs with at most this many tasks open every card; larger ones open fail/error only.
OPEN_ALL_UP_TO = 12


def task_class(tid: str):
    """The registered task class, or None (a task of another commit or a planted one)."""
    from harness.registry import REGISTRY

    try:
        return REGISTRY.get(tid) if tid in REGISTRY else None
    except Exception:  # a registry that fails to load must not take the report down
        return None


def area_order(area: str) -> int:
    return AREAS.index(area) if area in AREAS else len(AREAS)


def seed_key(seed: str | None) -> tuple:
    s = seed or ""
    if s.startswith("m") and s[1:].isdigit():
        return (100 + int(s[1:]), 0)
    try:
        a, b = s.split(".")
        return (int(a), int(b))
    except ValueError:
        return (1000, 0)


def sorted_tasks(tasks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    def key(t):
        area = t.get("area") or t["id"].split(".", 1)[0]
        return (area_order(area), seed_key(t.get("seed")), t["id"])

    return sorted(({"id": tid, **t} for tid, t in tasks.items()), key=key)


def measurement_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col, default in (("impl", "?"), ("config", ""), ("dtype", "")):
        if col not in df:
            df[col] = default
        df[col] = df[col].fillna(default).astype(str)
    if "median_ms" not in df:
        df["median_ms"] = None
    # the chart series: the implementation, plus the dtype when the task timed several
    df["series"] = df["impl"] + " (" + df["dtype"] + ")" if df["dtype"].nunique() > 1 else df["impl"]
    return df


def infer_baseline(tid: str, df: pd.DataFrame) -> str | None:
    """From the registry; else the one implementation whose speedup is 1.0 everywhere."""
    cls = task_class(tid)
    if cls is not None:
        try:
            return cls.baseline()
        except Exception:
            return None
    if "speedup_vs_baseline" not in df:
        return None
    ones = [impl for impl, g in df.groupby("impl") if (g["speedup_vs_baseline"] == 1.0).all()]
    return ones[0] if len(ones) == 1 else None


def checks_html(checks: list[dict[str, Any]]) -> str:
    if not checks:
        return ""
    cols = ["name", "passed", "max abs err", "max rel err", "rtol", "atol", "n"]
    has_msg = any(c.get("message") for c in checks)
    rows, classes = [], []
    for c in checks:
        ok = c.get("passed", False)
        row = [
            esc(c.get("name", "")),
            f'<span class="{"ok" if ok else "bad"}">{"yes" if ok else "NO"}</span>',
            c.get("max_abs_err"),
            c.get("max_rel_err"),
            c.get("rtol"),
            c.get("atol"),
            c.get("n"),
        ]
        if has_msg:
            row.append(esc(c.get("message", "")))
        rows.append(row)
        classes.append("" if ok else "failrow")
    if has_msg:
        cols.append("message")
    return "<h4>checks</h4>" + table(cols, rows, raw_cols=(0, 1, 7), row_classes=classes)


def row_class(r: dict[str, Any]) -> str:
    """Contended rows stand out most (too few clean samples), then noisy ones."""
    if r.get("contended") is True:
        return "contendedrow"
    if r.get("noisy") is True:
        return "noisyrow"
    return ""


def measurements_html(tid: str, rows: list[dict[str, Any]], figs: F.Figures) -> str:
    """The measurement block: charts, the table (every row, flags shown), and what the flags mean."""
    if not rows:
        return ""
    df = measurement_frame(rows)
    baseline = infer_baseline(tid, df)
    cols = [c for c in MEAS_COLS if c in df] + [
        c for c in df.columns if c not in MEAS_COLS and c not in MEAS_HIDDEN and c != "series"
    ]
    body = []
    for rec in df[cols].to_dict("records"):
        cells = []
        for c in cols:
            v = rec[c]
            if isinstance(v, float) and math.isnan(v):
                v = None
            if c == "impl" and v == baseline:
                v = f"{v} (baseline)"
            elif c in FLAGS:
                v = FLAGS[c] if v is True else ""
            cells.append(v)
        body.append(cells)
    noisy = sum(1 for r in rows if r.get("noisy") is True)
    contended = sum(1 for r in rows if r.get("contended") is True)
    suspect = sum(1 for r in rows if r.get("pct_peak_suspect") is True)
    waits = sum(1 for r in rows if r.get("waits") is True)
    # a row of the older schema (no contention data) with under 5 samples is not precise either
    few = sum(1 for r in rows if "contended" not in r and isinstance(r.get("n_samples"), int) and r["n_samples"] < 5)
    out = ["<h4>measurements</h4>"]
    out.append(figs.embed(F.impl_bars(df, baseline), empty="No finite median times to chart."))
    if df["config"].nunique() > 1:
        out.append(figs.embed(F.scaling(df), empty="No finite values across the configs to chart."))
    if any(c in df for c in ("pct_peak_flops", "pct_peak_bw")):
        out.append(figs.embed(F.pct_peak(df), empty="No % of peak values to chart."))
    elif any(c in df for c in ("gflops", "gbps")):
        out.append(para("% of peak: no measured peak was recorded for this run (see the environment).", "muted"))
    out.append(table(cols, body, cls="meas", row_classes=[row_class(r) for r in rows]))
    if contended:
        out.append(
            para(
                f"{contended} of {len(df)} measurements are CONTENDED: fewer than 5 samples were clean (the process "
                "was descheduled while they ran), so their medians are not precise; they are shown, not trusted.",
                "warn contended",
            )
        )
    if few:
        out.append(
            para(
                f"{few} of {len(df)} measurements have fewer than 5 samples and no contention data (a record "
                "written before the timer kept clean samples apart): their medians are not precise.",
                "warn",
            )
        )
    if noisy:
        out.append(
            para(
                f"{noisy} of {len(df)} measurements are noisy (IQR above 10% of the median): compare them with care.",
                "warn",
            )
        )
    if suspect:
        out.append(
            para(
                f"{suspect} measurement(s) show more than 100 % of the measured peak (SUSPECT): the peak or the "
                "timing is off, not the hardware.",
                "warn",
            )
        )
    if waits:
        out.append(
            para(
                f"{waits} measurement(s) wait by design (a server, a loader, a process group or a GPU): their CPU "
                "time is below their wall time without being preempted; they are judged by CPU pressure instead.",
                "muted",
            )
        )
    return "".join(out)


def curves_html(curves: list[dict[str, Any]], figs: F.Figures) -> str:
    if not curves:
        return ""
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in curves:
        groups.setdefault(str(c.get("name", "curve")), []).append(c)
    out = ["<h4>curves</h4>"]
    for name, cs in groups.items():
        out.append(figs.embed(F.curve_chart(name, cs), empty=f"Curve {name!r} has no finite points."))
    return "".join(out)


def tables_html(tables: list[dict[str, Any]]) -> str:
    out = []
    for t in tables:
        rows = t.get("rows") or []
        out.append(f"<h4>{esc(t.get('name', 'table'))}</h4>")
        if not rows:
            out.append(para("(no rows)", "muted"))
            continue
        cols = list(dict.fromkeys(k for r in rows for k in r))
        out.append(table(cols, ([r.get(c) for c in cols] for r in rows[:MAX_TABLE_ROWS])))
        if len(rows) > MAX_TABLE_ROWS:
            out.append(para(f"first {MAX_TABLE_ROWS} of {len(rows)} rows; the run record has them all.", "muted"))
    return "".join(out)


def card(t: dict[str, Any], figs: F.Figures, *, open_: bool, machine: str = "") -> str:
    tid, status = t["id"], t["status"]
    body = []
    if t.get("reason"):
        body.append(f'<p class="reason st-{esc(status)}-text">{esc(t["reason"])}</p>')
    cls = task_class(tid)
    if cls is not None:
        lesson = cls.lesson()
        if lesson:
            body.append(f'<div class="lesson">{render_rst(lesson)}</div>')
    facts = [(k, t.get(k)) for k in ("kind", "seed", "size", "dtype", "device", "duration_s") if t.get(k) is not None]
    if facts:
        body.append('<p class="facts">' + " · ".join(f"{esc(k)}: <b>{esc(fmt(v))}</b>" for k, v in facts) + "</p>")
    body.append(verdicts.claims_html(t, cls, machine))
    body.append(verdicts.strength_html(t, cls))
    body.append(checks_html(t.get("checks") or []))
    if t.get("skipped_parts"):
        body.append(
            "<h4>skipped parts</h4>"
            + ul([f"<b>{esc(p.get('part', ''))}</b>: {esc(p.get('reason', ''))}" for p in t["skipped_parts"]], raw=True)
        )
    body.append(measurements_html(tid, t.get("measurements") or [], figs))
    if t.get("metrics"):
        body.append("<h4>metrics</h4>" + kv_table(t["metrics"].items()))
    body.append(curves_html(t.get("curves") or [], figs))
    body.append(pictures_html(t.get("images") or [], figs))
    body.append(tables_html(t.get("tables") or []))
    if t.get("notes"):
        body.append("<h4>notes</h4>" + ul(t["notes"]))
    if t.get("warnings"):
        body.append("<h4>warnings</h4>" + ul(t["warnings"], cls="warn"))
    if t.get("error"):
        body.append(details("traceback", f'<pre class="tb">{esc(t["error"])}</pre>', open_=True))
    head, head_cls = verdicts.headline(t)
    summary = (
        f'{badge(status)} <span class="seed">{esc(t.get("seed") or "")}</span> '
        f'<span class="tid">{esc(tid)}</span> <span class="title">{esc(t.get("title") or "")}</span>'
        + (f' <span class="kind">{esc(t["kind"])}</span>' if t.get("kind") else "")
        + f' <span class="head {head_cls}">{esc(head)}</span>'
    )
    return details(
        summary,
        f'<div class="cardbody">{"".join(body)}</div>',
        open_=open_,
        cls="card",
        attrs=f' id="task-{slug(tid)}" data-status="{esc(status)}"',
    )


def task_cards(run: dict[str, Any], figs: F.Figures) -> str:
    """The cards of every task in ``run``, under one heading per area."""
    tasks = sorted_tasks(run["tasks"])
    if not tasks:
        return para("This run has no tasks.", "nodata")
    open_all = len(tasks) <= OPEN_ALL_UP_TO
    machine = verdicts.machine_label(run)
    out, area = [], None
    for t in tasks:
        a = t.get("area") or t["id"].split(".", 1)[0]
        if a != area:
            area = a
            n = sum(1 for x in tasks if (x.get("area") or x["id"].split(".", 1)[0]) == a)
            out.append(f'<h3 id="area-{slug(a)}">{esc(a)} <span class="muted">({n})</span></h3>')
        out.append(card(t, figs, open_=open_all or t["status"] in ("fail", "error"), machine=machine))
    return "".join(out)
