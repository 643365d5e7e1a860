"""The summary (counts by area, claims, check strength, catalogue coverage) and environment sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.fingerprint import REPO_ROOT
from harness.report import figures as F
from harness.report import verdicts
from harness.report.cards import area_order, sorted_tasks, task_class
from harness.report.catalogue import Coverage
from harness.report.html import STATUS_ORDER, details, esc, fmt, kv_table, para, slug, table


def run_facts(run: dict[str, Any]) -> str:
    fp = run.get("fingerprint") or {}
    git = fp.get("git") or {}
    commit = (git.get("short") or "no git") + (" (dirty)" if git.get("dirty") else "")
    items = [
        ("run", run.get("run_id")),
        ("status", run.get("status")),
        ("mode", run.get("mode")),
        ("device", run.get("device")),
        ("size", run.get("size") or "default"),
        ("started", run.get("started_utc")),
        ("finished", run.get("finished_utc") or "not finished"),
        ("commit", commit),
        ("machine", fp.get("machine_id")),
        ("tasks", len(run["tasks"])),
    ]
    return '<p class="facts">' + " · ".join(f"{esc(k)}: <b>{esc(fmt(v))}</b>" for k, v in items) + "</p>"


def status_counts(run: dict[str, Any]) -> pd.DataFrame:
    """Tasks per (area, status), areas in catalogue order, all four statuses as columns."""
    rows = [{"area": t.get("area") or tid.split(".", 1)[0], "status": t["status"]} for tid, t in run["tasks"].items()]
    if not rows:
        return pd.DataFrame(columns=list(STATUS_ORDER))
    df = pd.crosstab(pd.DataFrame(rows)["area"], pd.DataFrame(rows)["status"])
    df = df.reindex(columns=list(STATUS_ORDER), fill_value=0)
    return df.loc[sorted(df.index, key=lambda a: (area_order(a), a))]


def coverage_html(cov: Coverage) -> str:
    """Catalogue coverage: registered / catalogue rows, what ran, the missing rows by area."""
    out = [
        f'<p class="coverage"><b>{len(cov.registered)} of {len(cov.catalogue)}</b> catalogue tasks registered; '
        f'<b>{len(cov.ran)}</b> ran in this run. <span class="muted">(catalogue: harness/catalogue.toml)</span></p>'
    ]
    if cov.missing:
        by_area: dict[str, list] = {}
        for e in cov.missing:
            by_area.setdefault(e.area, []).append(e)
        body = "".join(
            f"<p><b>{esc(a)}</b> ({len(es)}): "
            + ", ".join(f'<span title="{esc(e.title)}">{esc(e.seed)} {esc(e.id)}</span>' for e in es)
            + "</p>"
            for a, es in sorted(by_area.items(), key=lambda kv: area_order(kv[0]))
        )
        out.append(details(f"{len(cov.missing)} catalogue tasks not registered yet", body, cls="missing"))
    if cov.extra:
        out.append(para(f"Registered ids not in the catalogue (rename, or add a row): {', '.join(cov.extra)}", "warn"))
    if cov.load_errors:
        body = "".join(f'<p><b>{esc(p)}</b></p><pre class="tb">{esc(tb)}</pre>' for p, tb in cov.load_errors.items())
        out.append(details(f'<span class="bad">{len(cov.load_errors)} task file(s) failed to import</span>', body))
    return "".join(out)


def summary_section(run: dict[str, Any], cov: Coverage, figs: F.Figures) -> str:
    counts = status_counts(run)
    out = [run_facts(run)]
    if run.get("status") == "interrupted":
        out.append(para("This run was interrupted: the tasks below are those that finished.", "warn"))
    elif run.get("status") == "running":
        out.append(para("This run had not finished when the report was rendered.", "warn"))
    out.append(figs.embed(F.status_by_area(counts), empty="No task ran in this run, so there is nothing to count."))
    if not counts.empty:
        rows = [
            [f'<a href="#area-{slug(a)}">{esc(a)}</a>']
            + [int(counts.loc[a, s]) for s in STATUS_ORDER]
            + [int(counts.loc[a].sum())]
            for a in counts.index
        ]
        rows.append(["<b>all</b>"] + [int(counts[s].sum()) for s in STATUS_ORDER] + [int(counts.to_numpy().sum())])
        out.append(table(["area", *STATUS_ORDER, "total"], rows, raw_cols=(0,), cls="counts"))
    out.append(coverage_html(cov))
    tasks = sorted_tasks(run["tasks"])
    if tasks:
        out.append(verdicts.claims_summary(tasks, verdicts.machine_label(run)))
        out.append(
            verdicts.strength_summary(
                tasks,
                task_class,
                lambda t: t.get("area") or t["id"].split(".", 1)[0],
                lambda a: (area_order(a), a),
            )
        )
    return "".join(out)


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        elif k != "gpus":
            out.append((f"{prefix}{k}", v))
    return out


def timer_check_html(run: dict[str, Any], runs_dir: Path | None = None) -> str:
    """The timer self-test of the run's machine: the newest ``results/timer_check/<machine>/*.json``
    (beside ``runs_dir`` when given).

    ``harness.timer_check.timer_check_summary(record)`` turns a record into table rows;
    without that module or without a record the section says how to make one.
    """
    machine = (run.get("fingerprint") or {}).get("machine_id")
    # beside the runs folder: results/timer_check (where `drills timer-check` writes by default)
    root = runs_dir.parent / "timer_check" if runs_dir is not None else REPO_ROOT / "results" / "timer_check"
    files = sorted((root / str(machine)).glob("*.json")) if machine else []
    how = "timer self-test not run (drills timer-check)"
    if not files:
        return "<h3>timer self-test</h3>" + para(f"{how}: no record under {root / str(machine)}.", "muted")
    try:
        from harness.timer_check import timer_check_summary  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return "<h3>timer self-test</h3>" + para(f"{how}: this version has no timer self-test.", "muted")
    path = files[-1]
    try:
        rows = timer_check_summary(json.loads(path.read_text()))
    except Exception as e:  # a bad record is named, the page goes on
        return "<h3>timer self-test</h3>" + para(f"{path}: cannot read the timer self-test ({e}).", "warn")
    if not rows:
        return "<h3>timer self-test</h3>" + para(f"{path}: the timer self-test record holds no rows.", "muted")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return (
        "<h3>timer self-test</h3>"
        + para(f"from {path.name} (drills timer-check): a benchmark of the timer itself, not a timed test", "muted")
        + table(cols, ([r.get(c) for c in cols] for r in rows), cls="timercheck")
    )


def environment_section(run: dict[str, Any], runs_dir: Path | None = None) -> str:
    fp = run.get("fingerprint") or {}
    out = ["<h3>machine fingerprint</h3>", kv_table(_flat(fp))]
    gpus = fp.get("gpus") or []
    if gpus:
        cols = list(dict.fromkeys(k for g in gpus for k in g))
        out += ["<h3>GPUs</h3>", table(cols, ([g.get(c) for c in cols] for g in gpus))]
    peak = run.get("peak") or {}
    out.append("<h3>measured peak</h3>")
    out.append(
        kv_table(peak.items())
        if peak
        else para(
            "No peak was recorded, so no task shows % of peak. `drills run` measures it once per machine.", "muted"
        )
    )
    caps = run.get("capabilities")
    if caps:
        try:
            from harness.capabilities import DESCRIPTIONS
        except Exception:  # pragma: no cover - the module is part of the harness
            DESCRIPTIONS = {}
        rows = [[k, "yes" if v else "no", DESCRIPTIONS.get(k, "")] for k, v in caps.items()]
        out += ["<h3>capabilities</h3>", table(["capability", "present", "meaning"], rows)]
    else:
        out.append(para("Capabilities were not recorded in this run (see `drills env`).", "muted"))
    out.append(timer_check_html(run, runs_dir))
    if run.get("argv"):
        out += ["<h3>command</h3>", f"<pre>drills {esc(' '.join(map(str, run['argv'])))}</pre>"]
    return "".join(out)
