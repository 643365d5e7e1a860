"""Compare two runs: a change is called on the raw samples, never on a contended measurement.

For each (task, impl, config, dtype) measured in both runs, ``ratio = median_B / median_A``
(medians of the clean samples, harness.timing). The verdict:

* ``contended`` when either side is contended (fewer than 5 clean samples, or steal);
  an old row without the field counts as contended when it has fewer than 5 samples.
  Contended measurements are never called regressions.
* Otherwise, with raw samples on both sides (the clean ones, at least
  :data:`MIN_RANK_SAMPLES` each): ``slower``/``faster`` only when a two-sided
  Mann-Whitney U test (``scipy.stats.mannwhitneyu``) gives p < :data:`ALPHA` **and**
  ``|ratio - 1| >`` :data:`MIN_EFFECT`; else ``same``. asv judges its raw samples with
  the same test (``asv/_stats.py: is_different``, p < 0.002, and a factor of 1.1).
  Why 0.01 and 5 %: with 5 clean samples a side the smallest p the test can give is
  2/C(10,5) = 0.008, so 0.01 still lets the slowest measurements be judged; samples of
  two runs differ by a few per cent systematically (another process, another memory
  layout), which the test detects at any alpha, so the effect floor is what keeps two
  runs of one commit from being called changed, and 5 % is half asv's factor so that a
  10 % slowdown is caught (the benchmark in tests/harness/test_compare_stats.py).
* Rows without raw samples (records written by other tools, too few samples) fall back
  to the IQR rule of earlier versions and say so (``method: "iqr"``): a change counts
  when ``|ratio - 1| > max(MIN_CHANGE, NOISE_FACTOR * (iqr_a/median_a + iqr_b/median_b))``.

Records of different setups (CPU model, GPU, torch version, benchmark thread count) are
refused unless forced, which labels the comparison. Claims (``"claims"`` of each task
entry, harness.claims) whose status differs between the runs are listed, matched by text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.results import ResultsError, load_run

#: Two-sided significance level of the rank test.
ALPHA = 0.01
#: Smallest relative change of the median that is called (5 %).
MIN_EFFECT = 0.05
#: Fewest clean samples a side for the rank test (with 5 a side, p can reach 0.008 < ALPHA).
MIN_RANK_SAMPLES = 5
#: Fewer samples than this (clean ones where known) make a row contended (harness.timing).
MIN_CLEAN_SAMPLES = 5
#: IQR fallback: floor and noise factor.
MIN_CHANGE = 0.05
NOISE_FACTOR = 1.5


class FingerprintMismatch(ResultsError):
    """The two records come from different setups; their timings do not compare."""


def _noise_threshold(a: dict[str, Any], b: dict[str, Any]) -> float:
    na = (a.get("iqr_ms") or 0) / a["median_ms"] if a.get("median_ms") else 0
    nb = (b.get("iqr_ms") or 0) / b["median_ms"] if b.get("median_ms") else 0
    return max(MIN_CHANGE, NOISE_FACTOR * (na + nb))


def clean_samples(row: dict[str, Any]) -> list[float] | None:
    """The row's raw samples without the preempted ones (all of them in older records); None if absent."""
    s = row.get("samples_ms")
    if not isinstance(s, list) or not s:
        return None
    pre = row.get("preempted")
    if isinstance(pre, list) and len(pre) == len(s):
        s = [x for x, p in zip(s, pre) if not p]
    return [float(x) for x in s if isinstance(x, (int, float)) and math.isfinite(x) and x > 0]


def is_contended(row: dict[str, Any]) -> bool:
    """The row's ``contended`` flag; for older rows without it, fewer than 5 samples."""
    if "contended" in row and row["contended"] is not None:
        return bool(row["contended"])
    n = row.get("n_samples")
    if not isinstance(n, int):
        s = row.get("samples_ms")
        n = len(s) if isinstance(s, list) else None
    return n is not None and n < MIN_CLEAN_SAMPLES


def rank_test(a: list[float], b: list[float]) -> float:
    """Two-sided Mann-Whitney U p-value of samples ``a`` vs ``b`` (``scipy.stats.mannwhitneyu``)."""
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:
        return 1.0  # all equal: no evidence of a difference (scipy would divide by zero)
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def judge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The verdict on measurement rows ``a`` (before) and ``b`` (after).

    Returns:
        ``{"ratio", "change", "method", "p", "threshold", "n_a", "n_b"}``: ``change`` is
        ``slower`` | ``faster`` | ``same`` | ``contended``; ``method`` ``rank`` or ``iqr``
        (no raw samples); ``p`` the rank test's p-value (None for ``iqr``); ``threshold``
        the relative change needed; ``n_a``/``n_b`` the clean samples used.
    """
    ratio = b["median_ms"] / a["median_ms"]
    sa, sb = clean_samples(a), clean_samples(b)
    out: dict[str, Any] = {
        "ratio": ratio,
        "n_a": len(sa) if sa is not None else None,
        "n_b": len(sb) if sb is not None else None,
    }
    if sa is not None and sb is not None and min(len(sa), len(sb)) >= MIN_RANK_SAMPLES:
        p = rank_test(sa, sb)
        out.update(method="rank", p=p, threshold=MIN_EFFECT)
        moved = p < ALPHA and abs(ratio - 1) > MIN_EFFECT
    else:
        t = _noise_threshold(a, b)
        out.update(method="iqr", p=None, threshold=t)
        moved = ratio > 1 + t or ratio < 1 / (1 + t)
    if is_contended(a) or is_contended(b):
        out["change"] = "contended"
    else:
        out["change"] = ("slower" if ratio > 1 else "faster") if moved else "same"
    return out


def threshold(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The relative change that counts for rows ``a`` and ``b`` (MIN_EFFECT, or the IQR rule's)."""
    return float(judge(a, b)["threshold"])


def verdict(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, str]:
    """(b/a median ratio, ``slower`` | ``faster`` | ``same`` | ``contended``) for two rows."""
    j = judge(a, b)
    return j["ratio"], j["change"]


def _threads(fp: dict[str, Any]) -> Any:
    return fp.get("bench_threads", fp.get("torch_threads"))


def fingerprint_differences(fa: dict[str, Any], fb: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints among CPU model, GPUs, torch version and threads.

    A field missing from either record is not a difference (older records lack ``bench_threads``).
    """
    out = []
    pairs = {
        "CPU": (fa.get("cpu_model"), fb.get("cpu_model")),
        "GPU": (
            [g.get("name") for g in fa.get("gpus") or []] if "gpus" in fa else None,
            [g.get("name") for g in fb.get("gpus") or []] if "gpus" in fb else None,
        ),
        "torch": (fa.get("torch"), fb.get("torch")),
        "threads": (_threads(fa), _threads(fb)),
    }
    for name, (x, y) in pairs.items():
        if x is not None and y is not None and x != y:
            show = (lambda v: ", ".join(v) or "none") if name == "GPU" else str
            out.append(f"{name} {show(x)} vs {show(y)}")
    return out


def claims_flipped(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Claims whose status differs between run records ``a`` and ``b`` (matched by task and text).

    Returns:
        rows ``{"task", "text", "a_status", "b_status", "a_value", "b_value"}``; a claim in
        one run only shows the other status as ``absent``.
    """
    out = []
    for tid in sorted(set(a["tasks"]) & set(b["tasks"])):
        ca = {c.get("text"): c for c in a["tasks"][tid].get("claims") or [] if isinstance(c, dict)}
        cb = {c.get("text"): c for c in b["tasks"][tid].get("claims") or [] if isinstance(c, dict)}
        for text in sorted(set(ca) | set(cb), key=str):
            sa, sb = (ca.get(text) or {}).get("status", "absent"), (cb.get(text) or {}).get("status", "absent")
            if sa != sb:
                out.append(
                    {
                        "task": tid,
                        "text": text,
                        "a_status": sa,
                        "b_status": sb,
                        "a_value": (ca.get(text) or {}).get("value"),
                        "b_value": (cb.get(text) or {}).get("value"),
                    }
                )
    return out


def _key(m: dict[str, Any]) -> tuple[str, str, str]:
    return (m["impl"], m.get("config", ""), m.get("dtype", ""))


def compare_runs(path_a: str | Path, path_b: str | Path, *, force: bool = False, full: bool = False) -> Any:
    """Compare two run records.

    Returns:
        the rows: one per (task, impl, config, dtype) measured in both runs with the
        fields of :func:`judge` plus task, impl, config, dtype, a_median_ms, b_median_ms;
        status changes and tasks in one run only as rows with just ``task`` and ``change``.
        With ``full``, a dict ``{"rows", "claims" (flipped), "fingerprint_differences",
        "forced", "alpha", "min_effect"}``.

    Raises:
        ResultsError: either file is not a readable run record.
        FingerprintMismatch: the setups differ and ``force`` is False.
    """
    a, b = load_run(path_a), load_run(path_b)
    diffs = fingerprint_differences(a.get("fingerprint") or {}, b.get("fingerprint") or {})
    if diffs and not force:
        raise FingerprintMismatch(
            f"{path_a} and {path_b} were measured on different setups ({'; '.join(diffs)}); "
            "their timings do not compare (pass --force to compare anyway)"
        )
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
            j = judge(prev, m)
            rows.append(
                {
                    "task": tid,
                    "impl": m["impl"],
                    "config": m.get("config", ""),
                    "dtype": m.get("dtype", ""),
                    "a_median_ms": prev["median_ms"],
                    "b_median_ms": m["median_ms"],
                    **j,
                    "ratio": float(f"{j['ratio']:.4g}"),
                    "threshold": float(f"{j['threshold']:.3g}"),
                    "p": None if j["p"] is None else float(f"{j['p']:.3g}"),
                }
            )
    if not full:
        return rows
    return {
        "forced": bool(diffs),
        "fingerprint_differences": diffs,
        "alpha": ALPHA,
        "min_effect": MIN_EFFECT,
        "rows": rows,
        "claims": claims_flipped(a, b),
    }


def summary_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many measurement rows are slower, faster, same, contended."""
    return {
        k: sum(r.get("change") == k for r in rows if "ratio" in r) for k in ("slower", "faster", "same", "contended")
    }


def print_comparison(result: dict[str, Any] | list[dict[str, Any]], console: Console) -> None:
    """Print the rows (and, given :func:`compare_runs`'s full dict, the label and flipped claims)."""
    full: dict[str, Any] = (
        result if isinstance(result, dict) else {"rows": result, "claims": [], "fingerprint_differences": []}
    )
    rows = full["rows"]
    title = (
        f"B vs A (ratio = B median / A median of clean samples; a change needs Mann-Whitney p < {ALPHA} "
        f"and more than {MIN_EFFECT:.0%}; 'iqr': no raw samples, judged against both IQRs)"
    )
    if full.get("forced"):
        title = "FORCED: different setups (" + "; ".join(full["fingerprint_differences"]) + ") -- " + title
    t = Table(title=title)
    for c in ("task", "impl", "config", "A ms", "B ms", "ratio", "needs", "p", "change"):
        t.add_column(c, overflow="fold")
    style = {"slower": "red", "faster": "green", "same": "dim", "contended": "yellow"}
    for r in rows:
        if "ratio" not in r:
            t.add_row(r["task"], "", "", "", "", "", "", "", Text(r["change"], style="yellow"))
            continue
        t.add_row(
            r["task"],
            r["impl"],
            r["config"],
            f"{r['a_median_ms']:.4g}",
            f"{r['b_median_ms']:.4g}",
            f"{r['ratio']:.3f}",
            f"±{r['threshold']:.0%}",
            "iqr" if r["p"] is None else f"{r['p']:.2g}",
            Text(r["change"], style=style[r["change"]]),
        )
    console.print(t)
    n = summary_counts(rows)
    console.print(
        f"{n['slower']} slower, {n['faster']} faster, {n['same']} within noise, "
        f"{n['contended']} contended (too few clean samples: not judged)"
        + (" [FORCED comparison of different setups]" if full.get("forced") else "")
    )
    for flip in full.get("claims") or []:
        console.print(Text(f"claim flipped: {flip['task']}: {flip['text']}: {flip['a_status']} -> {flip['b_status']}"))
