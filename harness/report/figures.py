"""Plotly figures of the report, and how they are embedded in the page.

Every builder returns a figure (a plotly figure dict: ``{"data": [traces], "layout": {...}}``)
or ``None`` when there is nothing to draw, and
:meth:`Figures.embed` writes a sentence instead of a figure without data points, so the
page never shows an empty chart.

Figures are embedded as JSON (``<script type="application/json">``) next to an empty
``<div class="plot">``; the page's script draws each one with ``Plotly.newPlot`` when it
scrolls into view or its ``<details>`` opens. Drawing all of a 130-task run at load
would take the browser tens of seconds, and plotly sizes a chart drawn into a hidden
div wrongly. The layouts use ``template="none"`` plus a few settings: plotly's default
template is ~6 kB of JSON that would be repeated in every figure.

Figures are plain dicts rather than ``plotly.graph_objects``: building and validating
``go.Figure`` objects cost ~30-60 ms each, 20+ s for a 130-task run with history; the
tests validate every embedded spec through ``go.Figure`` instead.

Text that plotly draws (titles, trace names, category labels) is HTML-escaped too:
plotly.js reads a subset of HTML tags in those strings and decodes entities.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.io as pio

from harness.report.html import esc, para

STATUS_COLORS = {"pass": "#2e7d32", "fail": "#c62828", "skip": "#9e9e9e", "error": "#ef6c00"}
COLORWAY = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
#: Ratio of largest to smallest value above which an axis goes logarithmic.
LOG_SPAN = 30.0


def base_layout(title: str, *, height: int = 340, **kw: Any) -> dict[str, Any]:
    axis = dict(gridcolor="#e6e6e6", zeroline=False, automargin=True, linecolor="#999", showline=True)
    lay: dict[str, Any] = dict(
        template="none",
        title=dict(text=esc(title), x=0.01, font=dict(size=14)),
        height=height,
        margin=dict(l=64, r=16, t=44, b=48),
        font=dict(family="system-ui, sans-serif", size=12),
        colorway=COLORWAY,
        paper_bgcolor="white",
        plot_bgcolor="white",
        legend=dict(font=dict(size=11)),
        xaxis=dict(axis),
        yaxis=dict(axis),
        hovermode="closest",
    )
    for k, v in kw.items():
        if k in ("xaxis", "yaxis"):
            lay[k] = {**lay[k], **v}
        else:
            lay[k] = v
    return lay


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


Figure = dict[str, Any]


def figure(traces: list[dict[str, Any]], layout: dict[str, Any]) -> Figure:
    return {"data": traces, "layout": layout}


def n_points(fig: Figure) -> int:
    """Data points that plotly can draw: finite values on the value axis of every trace
    (the cells of a heatmap)."""
    n = 0
    for tr in fig["data"]:
        if tr.get("type") == "heatmap":
            n += sum(1 for row in tr.get("z") or [] for v in (row or []) if finite(v))
            continue
        vals = tr.get("x") if tr.get("orientation") == "h" else tr.get("y")
        if vals is not None:
            n += sum(1 for v in vals if finite(v))
    return n


class Figures:
    """Collects the figures of one page; :attr:`count` is how many were embedded."""

    def __init__(self) -> None:
        self.count = 0

    def embed(self, fig: Figure | None, *, empty: str) -> str:
        """The figure's div and JSON spec, or ``empty`` as a sentence when it has no data."""
        if fig is None or n_points(fig) == 0:
            return para(empty, "nodata")
        self.count += 1
        fid = f"fig-{self.count}"
        spec = pio.to_json(fig, validate=False)
        # Inside <script>, "</script>" or "<!--" in a string would end the element early;
        # \u003c is the same character to JSON.parse.
        spec = spec.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return f'<div class="plot" id="{fid}"></div><script type="application/json" id="{fid}-spec">{spec}</script>'


def _bargap(n_categories: int) -> float:
    """Wider gaps for few categories: one bar across the whole chart reads as a wall."""
    return 0.7 if n_categories <= 2 else 0.5 if n_categories <= 4 else 0.2


def _log_axis(values: Sequence[float]) -> bool:
    pos = [v for v in values if finite(v) and v > 0]
    return len(pos) == len([v for v in values if finite(v)]) and len(pos) > 1 and max(pos) / min(pos) > LOG_SPAN


# -- summary -------------------------------------------------------------------------------


def status_by_area(counts: pd.DataFrame) -> Figure | None:
    """Stacked bars: one per area (rows of ``counts``), one segment per status (columns)."""
    if counts.empty or counts.to_numpy().sum() == 0:
        return None
    areas = [esc(a) for a in counts.index]
    traces = [
        dict(type="bar", x=areas, y=[int(v) for v in counts[s]], name=s, marker=dict(color=STATUS_COLORS.get(s)))
        for s in counts.columns
        if counts[s].sum() > 0
    ]
    yaxis: dict[str, Any] = dict(title=dict(text="tasks"))
    if counts.sum(axis=1).max() <= 12:
        yaxis["dtick"] = 1
    return figure(
        traces,
        base_layout("tasks by area and status", height=320, barmode="stack", bargap=_bargap(len(areas)), yaxis=yaxis),
    )


# -- measurements ---------------------------------------------------------------------------
# The builders take the frame of cards.measurement_frame: one row per measurement with
# the columns impl, config, dtype, series (impl, plus the dtype when a task has several),
# median_ms and whatever rates the task recorded.


def _col(df: pd.DataFrame, col: str) -> list[Any]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in df[col]] if col in df else [None] * len(df)


def _has(df: pd.DataFrame, col: str) -> bool:
    return col in df and any(finite(v) for v in df[col])


def impl_bars(df: pd.DataFrame, baseline: str | None) -> Figure | None:
    """Median ms per implementation with ±IQR/2 error bars; grouped by config when several."""
    df = df[[finite(v) for v in df["median_ms"]]]
    if df.empty:
        return None
    configs = list(dict.fromkeys(df["config"]))
    half_iqr = [(v or 0) / 2 for v in _col(df, "iqr_ms")]
    if len(configs) == 1:
        speed = _col(df, "speedup_vs_baseline")
        # a contended median (too few clean samples) is drawn orange and labelled, not hidden
        busy = [v is True for v in _col(df, "contended")]
        colors = ["#9e9e9e" if i == baseline else COLORWAY[0] for i in df["impl"]]
        traces: list[dict[str, Any]] = [
            dict(
                type="bar",
                x=[esc(n) for n in df["series"]],
                y=list(df["median_ms"]),
                name="median ms",
                marker=dict(color=["#ef6c00" if b else c for b, c in zip(busy, colors)]),
                text=[(f"{s:.3g}×" if finite(s) else "") + (" contended" if b else "") for s, b in zip(speed, busy)],
                textposition="outside",
                error_y=dict(type="data", array=half_iqr),
                showlegend=False,
            )
        ]
        xtitle = f"implementation ({esc(configs[0])})" if configs[0] else "implementation"
    else:
        df = df.assign(_half_iqr=half_iqr)
        traces = [
            dict(
                type="bar",
                x=[esc(c) for c in g["config"]],
                y=list(g["median_ms"]),
                name=esc(name),
                error_y=dict(type="data", array=list(g["_half_iqr"])),
            )
            for name, g in df.groupby("series", sort=False)
        ]
        xtitle = "config"
    title = "implementations" + (f" vs baseline {baseline}" if baseline else "") + ": median time"
    return figure(
        traces,
        base_layout(
            title,
            barmode="group",
            bargap=_bargap(len(traces[0]["x"])),
            xaxis=dict(title=dict(text=xtitle), type="category"),
            yaxis=dict(
                title=dict(text="median ms (bars: ±IQR/2)"),
                type="log" if _log_axis(list(df["median_ms"])) else "linear",
            ),
        ),
    )


_NUM = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def parse_config(label: str) -> dict[str, float]:
    """Numbers in a config label: ``"m=32,k=64"`` -> ``{"m": 32, "k": 64}``; a bare ``"1024"`` -> ``{"": 1024}``."""
    out: dict[str, float] = {}
    for part in re.split(r"[,;\s]+", str(label).strip()):
        if "=" in part:
            k, v = part.split("=", 1)
            if _NUM.match(v):
                out[k] = float(v)
        elif _NUM.match(part):
            out[""] = float(part)
    return out


def size_axis(labels: Sequence[str]) -> tuple[list[float], str, bool]:
    """x values for configs: ``(values, title, numeric)``.

    numeric: the configs differ in positive fields that grow together (``m=k=n``, or
    one field alone), so the first of them is the size, drawn on a log axis. Otherwise
    the config index on a linear axis, labelled with the configs.
    """
    parsed = [parse_config(lab) for lab in labels]
    common = [k for k in parsed[0] if all(k in p for p in parsed)] if parsed else []
    varying = [k for k in common if len({p[k] for p in parsed}) > 1]
    if varying and all(p[k] > 0 for p in parsed for k in varying):
        first = varying[0]
        xs = [p[first] for p in parsed]
        if len(set(xs)) == len(xs):
            order = sorted(range(len(xs)), key=xs.__getitem__)
            together = all(parsed[a][k] <= parsed[b][k] for k in varying for a, b in zip(order, order[1:]))
            if together:
                if len(varying) == 1:
                    title = first or "size"
                elif all(len({p[k] for k in varying}) == 1 for p in parsed):
                    title = "=".join(varying)
                else:
                    title = f"{first} (with {', '.join(varying[1:])})"
                return xs, title, True
    return [float(i) for i in range(len(labels))], "config", False


def throughput_metric(df: pd.DataFrame) -> str:
    """The metric the scaling chart plots: GFLOP/s, else GB/s, else a throughput, else median ms."""
    for col in ("gflops", "gbps"):
        if _has(df, col):
            return col
    for col in df.columns:
        if str(col).endswith("_per_s") and _has(df, col):
            return str(col)
    return "median_ms"


def scaling(df: pd.DataFrame) -> Figure | None:
    """One line per implementation across the configs of a sweep, on log axes."""
    configs = list(dict.fromkeys(df["config"]))
    if len(configs) < 2:
        return None
    metric = throughput_metric(df)
    df = df[[finite(v) for v in df[metric]]]
    if df.empty:
        return None
    xs, xtitle, numeric = size_axis(configs)
    xmap = dict(zip(configs, xs))
    df = df.assign(_x=[xmap[c] for c in df["config"]])
    traces = []
    for name, g in df.groupby("series", sort=False):
        g = g.sort_values("_x")
        traces.append(
            dict(
                type="scatter",
                x=list(g["_x"]),
                y=list(g[metric]),
                mode="lines+markers",
                name=esc(name),
                text=[esc(c) for c in g["config"]],
                hovertemplate="%{text}<br>%{y:.4g}",
            )
        )
    xaxis: dict[str, Any] = dict(title=dict(text=esc(xtitle)))
    if numeric:
        xaxis["type"] = "log"
    else:
        xaxis.update(tickmode="array", tickvals=xs, ticktext=[esc(c) for c in configs])
    ylog = all(v > 0 for v in df[metric])
    return figure(
        traces,
        base_layout(
            f"scaling across configs: {metric}",
            xaxis=xaxis,
            yaxis=dict(title=dict(text=metric), type="log" if ylog else "linear"),
        ),
    )


def pct_peak(df: pd.DataFrame) -> Figure | None:
    """% of this machine's measured peak: FLOP/s or bandwidth, whichever the task comes closer to."""
    cols = [c for c in ("pct_peak_flops", "pct_peak_bw") if _has(df, c)]
    if not cols:
        return None
    col = max(cols, key=lambda c: max(v for v in df[c] if finite(v)))
    df = df[[finite(v) for v in df[col]]]
    # above 100 % of the measured peak the peak or the timing is off: say so on the bar
    df = df.assign(_mark=["suspect" if v is True else "" for v in _col(df, "pct_peak_suspect")])
    df.loc[[finite(v) and v > 100 for v in df[col]], "_mark"] = "suspect"
    configs = list(dict.fromkeys(df["config"]))
    traces: list[dict[str, Any]]
    if len(configs) == 1:
        traces = [
            dict(
                type="bar",
                x=[esc(s) for s in df["series"]],
                y=list(df[col]),
                name=col,
                showlegend=False,
                marker=dict(color=COLORWAY[2]),
                text=list(df["_mark"]),
                textposition="outside",
            )
        ]
        xtitle = "implementation"
    else:
        traces = [
            dict(
                type="bar",
                x=[esc(c) for c in g["config"]],
                y=list(g[col]),
                name=esc(name),
                text=list(g["_mark"]),
                textposition="outside",
            )
            for name, g in df.groupby("series", sort=False)
        ]
        xtitle = "config"
    what = "peak matmul FLOP/s" if col == "pct_peak_flops" else "peak copy bandwidth"
    return figure(
        traces,
        base_layout(
            f"% of {what}",
            barmode="group",
            bargap=_bargap(len(traces[0]["x"])),
            xaxis=dict(title=dict(text=xtitle), type="category"),
            yaxis=dict(title=dict(text=f"{col} (%)"), type="log" if _log_axis(list(df[col])) else "linear"),
        ),
    )


# -- curves and history -----------------------------------------------------------------------


def curve_chart(name: str, curves: list[dict[str, Any]]) -> Figure | None:
    """Curves sharing ``name``: one line per series (``ctx.curve``)."""
    first = curves[0]
    log_x, log_y = bool(first.get("log_x")), bool(first.get("log_y"))
    traces = []
    for c in curves:
        pts = [
            (x, y)
            for x, y in zip(c.get("x") or [], c.get("y") or [])
            if finite(x) and finite(y) and (not log_x or x > 0) and (not log_y or y > 0)
        ]
        if pts:
            traces.append(
                dict(
                    type="scatter",
                    x=[p[0] for p in pts],
                    y=[p[1] for p in pts],
                    name=esc(c.get("series") or name),
                    mode="lines+markers" if len(pts) <= 30 else "lines",
                )
            )
    if not traces:
        return None
    return figure(
        traces,
        base_layout(
            name,
            showlegend=len(traces) > 1,
            xaxis=dict(title=dict(text=esc(first.get("x_label", "step"))), type="log" if log_x else "linear"),
            yaxis=dict(title=dict(text=esc(first.get("y_label") or name)), type="log" if log_y else "linear"),
        ),
    )


def history_chart(title: str, run_labels: list[str], series: dict[str, dict[int, float]]) -> Figure | None:
    """median_ms of each (impl, config) over the runs of one machine; x = run (time order)."""
    traces, values = [], []
    for name, pts in series.items():
        idx = sorted(i for i, v in pts.items() if finite(v))
        if idx:
            values += [pts[i] for i in idx]
            traces.append(
                dict(
                    type="scatter",
                    x=[esc(run_labels[i]) for i in idx],
                    y=[pts[i] for i in idx],
                    name=esc(name),
                    mode="lines+markers",
                )
            )
    if not traces:
        return None
    return figure(
        traces,
        base_layout(
            title,
            height=360,
            showlegend=len(traces) > 1,
            xaxis=dict(
                title=dict(text="run (oldest to newest)"),
                type="category",
                categoryorder="array",
                categoryarray=[esc(x) for x in run_labels],
            ),
            yaxis=dict(title=dict(text="median ms"), type="log" if _log_axis(values) else "linear"),
        ),
    )


# -- pictures -----------------------------------------------------------------------------------


def heatmap(
    name: str,
    z: Sequence[Sequence[float | None]],
    *,
    x: Sequence[Any] | None = None,
    y: Sequence[Any] | None = None,
    x_label: str = "",
    y_label: str = "",
) -> Figure | None:
    """A heatmap of ``z`` (rows, cols), row 0 at the top as in a matrix or an image.

    ``x``/``y`` label the columns/rows (numbers or text); None numbers them from 0.
    Non-finite cells are left blank. None when ``z`` is empty or not rectangular.
    """
    rows = [list(r) for r in z if isinstance(r, (list, tuple))]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        return None
    cells = [[float(v) if finite(v) else None for v in r] for r in rows]
    n_rows, n_cols = len(cells), len(cells[0])

    def labels(v: Sequence[Any] | None, n: int) -> tuple[list[Any], bool]:
        if v is None or len(v) != n:
            return list(range(n)), False
        if all(finite(i) for i in v):
            return list(v), False
        return [esc(i) for i in v], True

    xs, x_cat = labels(x, n_cols)
    ys, y_cat = labels(y, n_rows)
    trace = dict(
        type="heatmap",
        z=cells,
        x=xs,
        y=ys,
        colorscale="Viridis",
        hoverongaps=False,
        colorbar=dict(thickness=12),
    )
    side = max(300, min(560, 60 + 18 * n_rows))  # 300: the page's minimum chart height
    xaxis: dict[str, Any] = dict(title=dict(text=esc(x_label)), showgrid=False, showline=False)
    yaxis: dict[str, Any] = dict(title=dict(text=esc(y_label)), autorange="reversed", showgrid=False, showline=False)
    if x_cat:
        xaxis["type"] = "category"
    if y_cat:
        yaxis["type"] = "category"
    return figure([trace], base_layout(name, height=side, xaxis=xaxis, yaxis=yaxis))
