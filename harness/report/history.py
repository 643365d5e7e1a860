"""History across the runs of one machine, and regressions judged on raw samples.

A measurement of the newest run is compared with the same (task, impl, config, dtype)
in the most recent earlier run that has it, through :func:`harness.compare.judge`: a
change counts only when a rank test on the two runs' clean samples says so and the
medians differ by more than the effect floor (rows without raw samples fall back to the
IQR rule); a contended measurement (too few clean samples) is never called a regression.
"""

from __future__ import annotations

from typing import Any

from harness.compare import judge
from harness.report import figures as F
from harness.report.cards import sorted_tasks
from harness.report.html import details, esc, para, slug, table

Key = tuple[str, str, str]


def _key(m: dict[str, Any]) -> Key:
    return (str(m.get("impl", "?")), str(m.get("config", "")), str(m.get("dtype", "")))


def run_label(run: dict[str, Any]) -> str:
    git = (run.get("fingerprint") or {}).get("git") or {}
    return str(run["run_id"]) + ("+dirty" if git.get("dirty") else "")


def _medians(run: dict[str, Any], tid: str) -> dict[Key, dict[str, Any]]:
    t = run["tasks"].get(tid) or {}
    return {_key(m): m for m in t.get("measurements") or [] if F.finite(m.get("median_ms")) and m["median_ms"] > 0}


def regressions(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the newest run (``runs[-1]``) against the latest earlier run with each measurement.

    Each row: task, impl, config, dtype, prev_run, prev_ms, new_ms, ratio, needs
    (the threshold), change (``slower``/``faster``/``same``); status changes come as
    rows with ``change`` = ``status a -> b``.
    """
    if len(runs) < 2:
        return []
    new = runs[-1]
    rows: list[dict[str, Any]] = []
    for t in sorted_tasks(new["tasks"]):
        tid = t["id"]
        earlier = [(r, _medians(r, tid)) for r in reversed(runs[:-1]) if tid in r["tasks"]]  # newest first
        if earlier and earlier[0][0]["tasks"][tid]["status"] != t["status"]:
            rows.append({"task": tid, "change": f"status {earlier[0][0]['tasks'][tid]['status']} -> {t['status']}"})
        for key, m in _medians(new, tid).items():
            r, p = next(((r, ms[key]) for r, ms in earlier if key in ms), (None, None))
            if p is None or r is None:
                continue
            j = judge(p, m)
            rows.append(
                {
                    "task": tid,
                    "impl": key[0],
                    "config": key[1],
                    "dtype": key[2],
                    "prev_run": run_label(r),
                    "prev_ms": p["median_ms"],
                    "new_ms": m["median_ms"],
                    "ratio": j["ratio"],
                    "needs": j["threshold"],
                    "p": j.get("p"),
                    "method": j.get("method"),
                    "change": j["change"],
                }
            )
    return rows


def _reg_table(rows: list[dict[str, Any]]) -> str:
    cols = ["task", "impl", "config", "dtype", "previous run", "prev ms", "new ms", "ratio", "needs", "p", "change"]
    body, classes = [], []
    for r in rows:
        if "ratio" not in r:
            body.append([r["task"], "", "", "", "", None, None, None, None, None, r["change"]])
            classes.append("statusrow")
            continue
        body.append(
            [
                r["task"],
                r["impl"],
                r["config"],
                r["dtype"],
                r["prev_run"],
                r["prev_ms"],
                r["new_ms"],
                round(r["ratio"], 3),
                f"±{r['needs']:.0%}",
                f"{r['p']:.3g}" if r.get("p") is not None else "iqr rule",
                r["change"],
            ]
        )
        classes.append(f"ch-{r['change']}")
    return table(cols, body, row_classes=classes, cls="reg")


def history_section(runs: list[dict[str, Any]], figs: F.Figures, *, machine: str, notes: list[str]) -> str:
    """Regressions table and median-over-runs charts for ``runs`` (oldest first, newest last)."""
    out = [para(f"{len(runs)} run(s) of machine {machine}, from {run_label(runs[0])} to {run_label(runs[-1])}.")]
    out += [para(n, "warn") for n in notes]
    if len(runs) < 2:
        out.append(
            para(
                "History needs at least two runs of this machine; this is the only one. "
                "Run `drills run` again after a change to see medians over runs and regressions.",
                "nodata",
            )
        )
        return "".join(out)
    rows = regressions(runs)
    changed = [r for r in rows if r.get("change") not in ("same", "contended")]
    same = [r for r in rows if r.get("change") == "same"]
    contended = [r for r in rows if r.get("change") == "contended"]
    changed.sort(key=lambda r: ({"slower": 0, "faster": 2}.get(r["change"], 1), -r.get("ratio", 0)))
    n = {k: sum(r.get("change") == k for r in rows) for k in ("slower", "faster", "same", "contended")}
    out.append("<h3>regressions</h3>")
    out.append(
        para(
            f"Newest run against the latest earlier run that has each measurement: {n['slower']} slower, "
            f"{n['faster']} faster, {n['same']} within noise, {n['contended']} contended (not judged). "
            "A change counts when a Mann-Whitney U test on the two runs' clean samples gives p < 0.01 and the "
            "medians differ by more than 5 % (rows without raw samples: the IQR rule); a contended measurement "
            "(too few clean samples) is never called a regression (harness.compare)."
        )
    )
    if changed:
        out.append(_reg_table(changed))
    elif rows:
        out.append(para("No measurement changed beyond its noise.", "ok"))
    else:
        out.append(para("No measurement of the newest run was found in an earlier run.", "muted"))
    if contended:
        out.append(
            details(f"{len(contended)} contended measurement(s), not judged", _reg_table(contended), cls="contended")
        )
    if same:
        out.append(details(f"{len(same)} measurement(s) within noise", _reg_table(same)))

    out.append("<h3>median time over runs</h3>")
    labels = [run_label(r) for r in runs]
    areas: dict[str, list[str]] = {}
    slower_tasks = {r["task"] for r in rows if r.get("change") == "slower"}
    all_tasks: dict[str, dict[str, Any]] = {}
    for r in runs:
        for tid, t in r["tasks"].items():
            all_tasks[tid] = {**t, "id": tid}
    for t in sorted_tasks(all_tasks):
        tid = t["id"]
        per_run = [_medians(r, tid) for r in runs]
        several_dtypes = len({k[2] for ms in per_run for k in ms}) > 1
        series: dict[str, dict[int, float]] = {}
        for i, ms in enumerate(per_run):
            for key, m in ms.items():
                name = key[0] + (f" [{key[1]}]" if key[1] else "") + (f" {key[2]}" if several_dtypes else "")
                series.setdefault(name, {})[i] = m["median_ms"]
        series = {k: v for k, v in series.items() if len(v) >= 2}
        if not series:
            continue
        chart = figs.embed(
            F.history_chart(f"{tid}: median ms over runs", labels, series), empty=f"{tid}: no finite medians over runs."
        )
        area = t.get("area") or tid.split(".", 1)[0]
        mark = ' <span class="badge st-fail">slower</span>' if tid in slower_tasks else ""
        areas.setdefault(area, []).append(
            details(
                f'<span class="tid">{esc(tid)}</span>{mark}',
                chart,
                open_=tid in slower_tasks,
                attrs=f' id="hist-{slug(tid)}"',
            )
        )
    if not areas:
        out.append(para("No measurement appears in two or more runs yet.", "nodata"))
    for area, blocks in areas.items():
        out.append(f"<h4>{esc(area)}</h4>" + "".join(blocks))
    return "".join(out)
