"""Claims: a task's quantitative lesson as data, evaluated on every run record.

A lesson argues ("the KV cache turns O(N^2) generation into O(N)"); the number that backs
it on *this* machine is a claim, not prose: "KV-cache decoding >= 3x the tokens/s of
decoding without a cache at 256 new tokens". The harness evaluates each claim against the
run's measurements and metrics, and the report shows the measured value with a verdict:

* ``holds`` / ``fails``: the measurements exist and are clean;
* ``not measured``: the task was skipped, the claim is for another device, a measurement
  or metric is absent, or a measurement it needs is contended (too few clean samples:
  see :mod:`harness.timing`), so no verdict would be honest.

Three forms cover the lessons of the catalogue::

    claims = (
        speedup("generate_kv_cache", over="generate_no_cache", at_least=3.0,
                text="KV-cache decoding >= 3x the tokens/s of decoding without a cache"),
        time_ratio("im2col", to="torch_conv2d", at_most=2.0, text="im2col within 2x of F.conv2d"),
        metric("held_out_acc", ">=", 0.97, text="digits MLP reaches 97 % held-out accuracy"),
    )

``speedup`` is ``median_ms(over) / median_ms(impl)`` (above 1: ``impl`` is faster);
``time_ratio`` is ``median_ms(impl) / median_ms(to)``. Both compare two implementations at
the same config and dtype (the last config both were measured at, i.e. the largest of a
sweep, unless ``config`` names one), so a claim never compares unlike work. ``metric``
reads a scalar the task records with ``ctx.metric`` and must be declared in the task's
``metrics`` (name -> meaning with unit), so that a renamed metric fails at registration.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Sequence
from typing import Any

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
STATUSES = ("holds", "fails", "not measured")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One quantitative statement of a task's lesson.

    Attributes:
        text: the statement as a reader sees it, with its threshold and unit.
        form: ``speedup``, ``time_ratio`` or ``metric``.
        subject: the implementation (speedup, time_ratio) or metric name (metric).
        other: the implementation compared against (speedup, time_ratio), else None.
        op: ``>=``, ``<=``, ``>`` or ``<``.
        threshold: the value the measured quantity is compared with (unit: ``x`` for the
            two ratio forms, the metric's own unit otherwise).
        config: a config label (or a substring of one) to evaluate at; None means the last
            config both implementations were measured at.
        device: ``cuda`` or ``cpu`` when the claim is about one device only; elsewhere it
            is "not measured" with that reason.
    """

    text: str
    form: str
    subject: str
    other: str | None
    op: str
    threshold: float
    config: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if self.form not in ("speedup", "time_ratio", "metric"):
            raise ValueError(f"claim {self.text!r}: form {self.form!r} is not speedup, time_ratio or metric")
        if self.op not in OPS:
            raise ValueError(f"claim {self.text!r}: op {self.op!r} is not one of {', '.join(OPS)}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"claim {self.text!r}: threshold must be finite, got {self.threshold}")
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"claim {self.text!r}: device must be None, 'cpu' or 'cuda', got {self.device!r}")

    @property
    def unit(self) -> str:
        return "x" if self.form in ("speedup", "time_ratio") else ""

    def measurements(self) -> tuple[str, ...]:
        """Implementation names the claim reads (a metric claim: the one it is measured by, if any)."""
        if self.form == "metric":
            return (self.other,) if self.other else ()
        return (self.subject, self.other) if self.other else ()


def speedup(
    impl: str, *, over: str, at_least: float, text: str, config: str | None = None, device: str | None = None
) -> Claim:
    """``median_ms(over) / median_ms(impl) >= at_least``: ``impl`` is that many times faster."""
    return Claim(text, "speedup", impl, over, ">=", float(at_least), config, device)


def time_ratio(
    impl: str, *, to: str, at_most: float, text: str, config: str | None = None, device: str | None = None
) -> Claim:
    """``median_ms(impl) / median_ms(to) <= at_most``: ``impl`` costs at most that many times ``to``."""
    return Claim(text, "time_ratio", impl, to, "<=", float(at_most), config, device)


def metric(
    name: str, op: str, threshold: float, *, text: str, device: str | None = None, measured_by: str | None = None
) -> Claim:
    """``metrics[name] <op> threshold`` for a scalar the task records with ``ctx.metric``.

    ``measured_by`` names the implementation whose timing the metric comes from (a median
    turned into a rate, say): when that measurement is contended, the claim gets no verdict.
    """
    return Claim(text, "metric", name, measured_by, op, float(threshold), None, device)


def validate(task_cls: Any) -> None:
    """Static check at registration: every claim names what the task records.

    Raises:
        ValueError: a claim naming an implementation the task lacks, or a metric missing
            from the task's ``metrics`` declaration (the message names task and claim).
    """
    impls = {s.name for s in task_cls.implementations()}
    declared = set(getattr(task_cls, "metrics", {}) or {})
    for c in task_cls.claims:
        if not isinstance(c, Claim):
            raise ValueError(f"task {task_cls.id}: claims must be harness.claims.Claim objects, got {c!r}")
        for name in c.measurements():
            if name not in impls:
                raise ValueError(
                    f"task {task_cls.id}: claim {c.text!r} names implementation {name!r}, which the task "
                    f"does not have (it has {', '.join(sorted(impls)) or 'none'})"
                )
        if c.form == "metric" and c.subject not in declared:
            raise ValueError(
                f"task {task_cls.id}: claim {c.text!r} reads metric {c.subject!r}, which the task does not "
                f"declare in `metrics` (declared: {', '.join(sorted(declared)) or 'none'})"
            )


def _rows(entry: dict[str, Any], impl: str) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for m in entry.get("measurements") or []:
        if isinstance(m, dict) and m.get("impl") == impl:
            out[(str(m.get("config", "")), str(m.get("dtype", "")))] = m
    return out


def _pick(keys: Sequence[tuple[str, str]], config: str | None) -> tuple[str, str] | None:
    if config is not None:
        exact = [k for k in keys if k[0] == config]
        keys = exact or [k for k in keys if config in k[0]]
    return keys[-1] if keys else None


def _median(row: dict[str, Any]) -> float | None:
    v = row.get("median_ms")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else None


def evaluate(claim: Claim, entry: dict[str, Any], device: str | None = None) -> dict[str, Any]:
    """The verdict of ``claim`` on one task entry of a run record.

    Args:
        entry: the task's entry (``measurements``, ``metrics``, ``status``, ``reason``).
        device: the run's device type (``cpu``/``cuda``); None skips the device test.

    Returns:
        JSON-ready ``{"text", "status", "value", "op", "threshold", "unit", "why", "device",
        "config"}``; ``status`` is one of :data:`STATUSES`, ``value`` None when unmeasured.
    """
    out: dict[str, Any] = {
        "text": claim.text,
        "status": "not measured",
        "value": None,
        "op": claim.op,
        "threshold": claim.threshold,
        "unit": claim.unit,
        "why": "",
        "device": claim.device,
    }
    dev = (device or "").split(":")[0] or None
    if claim.device and dev and claim.device != dev:
        out["why"] = f"a {claim.device} claim; this run was on {dev}"
        return out
    status = entry.get("status")
    if status == "skip":
        out["why"] = f"task skipped: {entry.get('reason', '')}".strip()
        return out
    if claim.form == "metric":
        v = (entry.get("metrics") or {}).get(claim.subject)
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            out["why"] = f"metric {claim.subject!r} not recorded" + (f" (task {status})" if status != "pass" else "")
            return out
        out["value"] = float(v)
        busy = [r for r in _rows(entry, claim.other).values() if r.get("contended")] if claim.other else []
        if busy:
            out["why"] = f"contended: {claim.other} had too few clean samples (machine busy)"
            return out
    else:
        a, b = _rows(entry, claim.subject), _rows(entry, claim.other or "")
        shared = [k for k in a if k in b]
        key = _pick(shared, claim.config)
        if key is None:
            where = f" at config {claim.config!r}" if claim.config else " at a shared config"
            out["why"] = f"no measurements of {claim.subject} and {claim.other}{where}" + (
                f" (task {status})" if status != "pass" else ""
            )
            return out
        ra, rb = a[key], b[key]
        ma, mb = _median(ra), _median(rb)
        out["config"] = key[0]
        if ma is None or mb is None:
            out["why"] = "a median is missing or not positive"
            return out
        out["value"] = float(f"{(mb / ma if claim.form == 'speedup' else ma / mb):.4g}")
        contended = [r["impl"] for r in (ra, rb) if r.get("contended")]
        if contended:
            out["why"] = f"contended: {', '.join(contended)} had too few clean samples (machine busy)"
            return out
        noisy = [r["impl"] for r in (ra, rb) if r.get("noisy")]
        if noisy:
            out["why"] = f"noisy: IQR/median above 10 % for {', '.join(noisy)}"
    out["status"] = "holds" if OPS[claim.op](out["value"], claim.threshold) else "fails"
    return out


def evaluate_all(task_cls: Any, entry: dict[str, Any], device: str | None = None) -> list[dict[str, Any]]:
    """:func:`evaluate` for every claim of ``task_cls`` (an empty list when it has none)."""
    return [evaluate(c, entry, device) for c in getattr(task_cls, "claims", ())]
