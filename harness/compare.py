"""Compare two runs, judging each change against the measurements' own noise.

A change counts only when it is larger than the spread of the two measurements: the
ratio ``b / a`` of medians is a regression (or improvement) when
``|ratio - 1| > max(MIN_CHANGE, NOISE_FACTOR * (iqr_a/median_a + iqr_b/median_b))``.
With a 2% IQR on each side a change must exceed 5%; with 10% it must exceed 30%.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.results import load_run

MIN_CHANGE = 0.05
NOISE_FACTOR = 1.5


def threshold(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The relative change that counts as real for measurements ``a`` and ``b``."""
    na = a.get("iqr_ms", 0) / a["median_ms"] if a.get("median_ms") else 0
    nb = b.get("iqr_ms", 0) / b["median_ms"] if b.get("median_ms") else 0
    return max(MIN_CHANGE, NOISE_FACTOR * (na + nb))


def verdict(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, str]:
    """(b/a median ratio, ``slower`` | ``faster`` | ``same``) for two measurement rows."""
    ratio = b["median_ms"] / a["median_ms"]
    t = threshold(a, b)
    if ratio > 1 + t:
        return ratio, "slower"
    if ratio < 1 / (1 + t):
        return ratio, "faster"
    return ratio, "same"


def _key(m: dict[str, Any]) -> tuple[str, str, str]:
    return (m["impl"], m.get("config", ""), m.get("dtype", ""))


def compare_runs(path_a: str | Path, path_b: str | Path) -> list[dict[str, Any]]:
    """One row per (task, impl, config, dtype) measured in both runs, plus status changes.

    Raises:
        ResultsError: either file is not a readable run record.
    """
    a, b = load_run(path_a), load_run(path_b)
    rows: list[dict[str, Any]] = []
    for tid in sorted(set(a["tasks"]) | set(b["tasks"])):
        ta, tb = a["tasks"].get(tid), b["tasks"].get(tid)
        if ta is None or tb is None:
            rows.append({"task": tid, "change": "only in " + ("B" if ta is None else "A")})
            continue
        if ta["status"] != tb["status"]:
            rows.append({"task": tid, "change": f"status {ta['status']} -> {tb['status']}"})
        ma = {_key(m): m for m in ta.get("measurements", [])}
        for m in tb.get("measurements", []):
            prev = ma.get(_key(m))
            if prev is None or not prev.get("median_ms") or not m.get("median_ms"):
                continue
            ratio, v = verdict(prev, m)
            rows.append(
                {
                    "task": tid,
                    "impl": m["impl"],
                    "config": m.get("config", ""),
                    "dtype": m.get("dtype", ""),
                    "a_median_ms": prev["median_ms"],
                    "b_median_ms": m["median_ms"],
                    "ratio": float(f"{ratio:.4g}"),
                    "threshold": float(f"{threshold(prev, m):.3g}"),
                    "change": v,
                }
            )
    return rows


def print_comparison(rows: list[dict[str, Any]], console: Console) -> None:
    t = Table(title="B vs A (ratio = B median / A median; judged against both runs' IQR)")
    for c in ("task", "impl", "config", "A ms", "B ms", "ratio", "needs", "change"):
        t.add_column(c, overflow="fold")
    style = {"slower": "red", "faster": "green", "same": "dim"}
    for r in rows:
        if "ratio" not in r:
            t.add_row(r["task"], "", "", "", "", "", "", f"[yellow]{r['change']}[/]")
            continue
        t.add_row(
            r["task"],
            r["impl"],
            r["config"],
            f"{r['a_median_ms']:.4g}",
            f"{r['b_median_ms']:.4g}",
            f"{r['ratio']:.3f}",
            f"±{r['threshold']:.0%}",
            f"[{style[r['change']]}]{r['change']}[/]",
        )
    console.print(t)
    n = {k: sum(r.get("change") == k for r in rows) for k in ("slower", "faster", "same")}
    console.print(f"{n['slower']} slower, {n['faster']} faster, {n['same']} within noise")
