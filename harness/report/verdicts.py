"""Claims and check strength as the report shows them.

Claims (``harness.claims``): a task's quantitative lesson, evaluated on the run record.
A run-record task entry carries them as ``"claims": [{"text", "status", "value", "op",
"threshold", "unit", "why", "device"}]`` with ``status`` ``holds``, ``fails`` or ``not
measured``. The card lists every claim with the measured value, the verdict (and why
when not measured) and the machine of the record; the card's headline is the first
claim. A record written before claims existed says "no claim recorded".

Check strength (``harness.mutants``): ``"mutants": [{"name", "what", "caught", "how"}]``
from ``drills check --mutants``. The card shows "check strength: caught k / declared n"
with the names (caught green, survivors red); a task whose record has no mutant results
shows "declared n, not run (drills check --mutants)".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.report import figures as F
from harness.report.html import esc, fmt, para, slug, table

#: How a status reads on the page, and its CSS class.
CLAIM_LABELS = {"holds": ("holds", "ok"), "fails": ("does not hold", "bad"), "not measured": ("not measured", "muted")}
NO_CLAIM = "no claim recorded"


def machine_label(run: dict[str, Any]) -> str:
    """``machine_id (CPU model, GPU name)`` of a run's fingerprint: what a claim was measured on."""
    fp = run.get("fingerprint") or {}
    parts = [str(fp.get("cpu_model") or "")] + [str(g.get("name") or "") for g in fp.get("gpus") or []][:1]
    detail = ", ".join(p for p in parts if p)
    mid = str(fp.get("machine_id") or "unknown machine")
    return f"{mid} ({detail})" if detail else mid


def value_text(c: dict[str, Any]) -> str:
    """``3.91x (needs >= 3x)`` (HTML-escaped); ``—`` for the value when the claim was not measured."""
    unit = str(c.get("unit") or "")
    need = f"needs {c.get('op', '')} {fmt(c.get('threshold'))}{unit}".strip()
    v = c.get("value")
    got = f"{fmt(float(v))}{unit}" if isinstance(v, (int, float)) and F.finite(v) else "—"
    return esc(f"{got} ({need})" if c.get("op") else got)


def status_html(c: dict[str, Any]) -> str:
    label, cls = CLAIM_LABELS.get(str(c.get("status")), (str(c.get("status") or "?"), "muted"))
    return f'<span class="{cls}">{esc(label)}</span>'


def declared_claims(cls: Any) -> list[str]:
    try:
        return [str(c.text) for c in getattr(cls, "claims", ()) or ()]
    except Exception:  # a task class of another commit: its claims are not the report's business
        return []


def declared_mutants(cls: Any) -> list[tuple[str, str]]:
    try:
        return [(str(m.name), str(getattr(m, "what", ""))) for m in getattr(cls, "mutants", ()) or ()]
    except Exception:
        return []


def headline(t: dict[str, Any]) -> tuple[str, str]:
    """(text, CSS class) of the card's headline: the first claim with its value and verdict."""
    claims = t.get("claims")
    if not claims:
        return NO_CLAIM, "head-none"
    c = claims[0]
    label, _ = CLAIM_LABELS.get(str(c.get("status")), (str(c.get("status")), ""))
    v = c.get("value")
    val = f": {fmt(float(v))}{c.get('unit') or ''}" if isinstance(v, (int, float)) and F.finite(v) else ""
    return f"{c.get('text', '')}{val}, {label}", f"head-{slug(str(c.get('status') or 'none'))}"


def claims_html(t: dict[str, Any], cls: Any, machine: str) -> str:
    """The card's claims block: every recorded claim, or the declared ones marked unrecorded."""
    claims = t.get("claims")
    if not claims:
        declared = declared_claims(cls)
        if not declared:
            return "<h4>claims</h4>" + para(f"{NO_CLAIM}: this task states no claim yet.", "muted")
        return (
            "<h4>claims</h4>"
            + para(f"{NO_CLAIM} in this run record (written before the task had claims); the task states:", "muted")
            + "<ul>"
            + "".join(f"<li>{esc(x)}</li>" for x in declared)
            + "</ul>"
        )
    rows, classes = [], []
    for c in claims:
        why = str(c.get("why") or "")
        dev = f" (a {c['device']} claim)" if c.get("device") else ""
        rows.append([esc(c.get("text", "")), value_text(c), status_html(c), esc(why + dev), esc(machine)])
        classes.append({"fails": "failrow", "not measured": "unmeasuredrow"}.get(str(c.get("status")), ""))
    return "<h4>claims</h4>" + table(
        ["claim", "measured", "verdict", "why", "measured on"], rows, raw_cols=(0, 1, 2, 3, 4), row_classes=classes
    )


def strength(t: dict[str, Any], cls: Any) -> dict[str, Any]:
    """Check strength of one task entry.

    Returns:
        ``{"declared", "ran", "caught", "results", "not_run"}``: declared counts the mutants
        the task class declares and those the record ran (the same names, unless the task
        changed since the record was written), ran/caught count the record's results,
        not_run names the declared mutants the record has no result for.
    """
    results = [m for m in t.get("mutants") or [] if isinstance(m, dict)]
    declared = declared_mutants(cls)
    ran_names = {str(m.get("name")) for m in results}
    return {
        "declared": len({n for n, _ in declared} | ran_names),
        "ran": len(results),
        "caught": sum(1 for m in results if m.get("caught") is True),
        "results": results,
        "declared_list": declared,
        "not_run": [n for n, _ in declared if n not in ran_names],
    }


def _mutant_tag(m: dict[str, Any], tip: str = "") -> str:
    """A mutant's name, green when the check caught it, red when it survived."""
    state = "caught" if m.get("caught") is True else "survived"
    title = f' title="{esc(tip)}"' if tip else ""
    return f'<span class="mutant {state}"{title}>{esc(m.get("name"))}</span>'


def strength_html(t: dict[str, Any], cls: Any) -> str:
    s = strength(t, cls)
    if not s["declared"]:
        return "<h4>check strength</h4>" + para(
            "no wrong implementations declared: nothing shows that this check can fail.", "warn"
        )
    if not s["ran"]:
        names = ", ".join(n for n, _ in s["declared_list"])
        return "<h4>check strength</h4>" + (
            f'<p class="strength">declared {s["declared"]}, not run (<code>drills check --mutants</code>)'
            f"{': ' + esc(names) if names else ''}</p>"
        )
    items = []
    for m in s["results"]:
        ok = m.get("caught") is True
        tip = f"{m.get('what', '')} | {'caught' if ok else 'survived'}: {m.get('how', '')}"
        items.append(_mutant_tag(m, tip))
    head = f'<p class="strength">check strength: <b>caught {s["caught"]} / declared {s["declared"]}</b> '
    if s["not_run"] and s["results"]:
        head += f'<span class="muted">(not in this record: {esc(", ".join(s["not_run"]))})</span> '
    detail = table(
        ["mutant", "what is wrong", "caught", "how"],
        [
            [
                _mutant_tag(m),
                esc(m.get("what", "")),
                "yes" if m.get("caught") is True else "NO",
                esc(m.get("how", "")),
            ]
            for m in s["results"]
        ],
        raw_cols=(0, 1, 3),
        row_classes=["" if m.get("caught") is True else "failrow" for m in s["results"]],
    )
    return (
        "<h4>check strength</h4>"
        + head
        + " ".join(items)
        + "</p>"
        + f"<details><summary>what each mutant gets wrong</summary>{detail}</details>"
    )


# -- summary ------------------------------------------------------------------------------------


def claims_summary(tasks: Sequence[dict[str, Any]], machine: str) -> str:
    """All claims of the run in one table, with counts per verdict."""
    rows, classes, counts = [], [], {"holds": 0, "fails": 0, "not measured": 0}
    no_claims = 0
    for t in tasks:
        claims = t.get("claims") or []
        if not claims:
            no_claims += 1
        for c in claims:
            st = str(c.get("status"))
            counts[st] = counts.get(st, 0) + 1
            rows.append(
                [
                    f'<a href="#task-{slug(t["id"])}">{esc(t["id"])}</a>',
                    esc(c.get("text", "")),
                    value_text(c),
                    status_html(c),
                    esc(c.get("why") or ""),
                ]
            )
            classes.append({"fails": "failrow", "not measured": "unmeasuredrow"}.get(st, ""))
    head = (
        f'<p class="claimcounts">claims measured on <b>{esc(machine)}</b>: '
        f'<span class="ok">{counts["holds"]} hold</span>, <span class="bad">{counts["fails"]} do not hold</span>, '
        f'<span class="muted">{counts["not measured"]} not measured</span>'
        + (f'; <span class="muted">{no_claims} task(s) with {NO_CLAIM}</span>' if no_claims else "")
        + "</p>"
    )
    if not rows:
        return "<h3>claims</h3>" + head
    return (
        "<h3>claims</h3>"
        + head
        + table(["task", "claim", "measured", "verdict", "why"], rows, raw_cols=(0, 1, 2, 3, 4), row_classes=classes)
    )


def strength_summary(tasks: Sequence[dict[str, Any]], cls_of: Any, area_of: Any, area_key: Any) -> str:
    """Check strength per area: mutants declared, run, caught, survivors."""
    per: dict[str, dict[str, Any]] = {}
    for t in tasks:
        s = strength(t, cls_of(t["id"]))
        a = per.setdefault(area_of(t), {"tasks": 0, "declared": 0, "ran": 0, "caught": 0, "none": 0, "survivors": []})
        a["tasks"] += 1
        a["declared"] += s["declared"]
        a["ran"] += s["ran"]
        a["caught"] += s["caught"]
        a["none"] += s["declared"] == 0
        a["survivors"] += [f"{t['id']}:{m.get('name')}" for m in s["results"] if m.get("caught") is not True]
    rows = []
    for area in sorted(per, key=area_key):
        a = per[area]
        strength_txt = f"{a['caught']} / {a['declared']}" if a["ran"] else f"declared {a['declared']}, not run"
        rows.append(
            [
                f'<a href="#area-{slug(area)}">{esc(area)}</a>',
                a["tasks"],
                a["declared"],
                a["ran"],
                a["caught"],
                esc(strength_txt),
                a["none"],
                '<span class="bad">' + esc(", ".join(a["survivors"])) + "</span>" if a["survivors"] else "",
            ]
        )
    return "<h3>check strength by area</h3>" + table(
        [
            "area",
            "tasks",
            "mutants declared",
            "run",
            "caught",
            "caught / declared",
            "tasks without mutants",
            "survivors",
        ],
        rows,
        raw_cols=(0, 5, 7),
        cls="strength-table",
    )
