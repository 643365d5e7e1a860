"""The context a task runs in: device, dtype, seed, size, and what it records.

A task never picks its device, dtype or seed: the harness passes them here. Everything
the task measures goes through the context into a JSON-ready :class:`TaskRecord`, so
the runner, pytest and asv front ends share one path.

Units live in metric names: ``median_ms``, ``gflops`` (GFLOP/s), ``gbps`` (GB/s,
10**9 bytes per second), ``pct_peak_flops``, ``<unit>_per_s``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from harness import capabilities
from harness.checks import CheckFailed, CheckResult, compare
from harness.contract import ImplSpec, Prepared, config_label
from harness.images import encode_heatmap, encode_image
from harness.timing import NOISE_THRESHOLD, Measurement, NoisyMeasurementWarning, measure

if TYPE_CHECKING:  # annotations only: harness.task imports nothing from here at run time
    from harness.task import Task


@dataclasses.dataclass
class TaskRecord:
    """What one task run produced; ``to_json`` is its entry in the run record."""

    id: str
    status: str = "pass"  # pass | fail | skip | error
    reason: str = ""
    checks: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    measurements: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    metrics: dict[str, float | None] = dataclasses.field(default_factory=dict)
    curves: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tables: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped_parts: list[dict[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    images: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    mutants: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["checks"] = list(self.checks.values())
        return {k: v for k, v in d.items() if v not in ("", [], {}) or k in ("status", "id")}


#: Called as ``RECORD_HOOK(record, what)`` after a check, measurement, metric, curve, table,
#: picture or note is recorded (``what``: ``"check"``, ``"measurement"``, ...). The isolated
#: runner's worker sets it to send the partial record to the main process, so a task cut off
#: by its time limit keeps what it recorded (see harness.runner). None: nothing is called.
RECORD_HOOK: Callable[[TaskRecord, str], None] | None = None


def _recorded(record: TaskRecord, what: str) -> None:
    if RECORD_HOOK is not None:
        RECORD_HOOK(record, what)


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))) else x


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


class Context:
    """What a task gets from the harness.

    Attributes:
        mode: ``check`` or ``bench``.
        device: torch device the task must use.
        dtype: the dtype of this run (one of the task's check or bench dtypes).
        size: size preset name; ``configs`` are its configs.
        rng_seed: base RNG seed; trials use ``rng_seed + i``.
        peak: measured peaks of this device (``matmul_gflops``, ``copy_gbps``) or {}.
        min_run_time_s: seconds of timing per measurement.
        timing_mode: ``auto``, ``cold``, ``warm`` or ``graph`` (CUDA).
    """

    def __init__(
        self,
        task: Task | type[Task],
        *,
        mode: str,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        size: str = "tiny",
        rng_seed: int = 0,
        peak: dict[str, float] | None = None,
        min_run_time_s: float = 0.5,
        timing_mode: str = "auto",
        record: TaskRecord | None = None,
        workdir: Path | None = None,
    ):
        self.task_cls = task if isinstance(task, type) else type(task)
        self.mode = mode
        self.device = torch.device(device)
        self.dtype = dtype
        self.size = size
        self.configs = self.task_cls.configs(size)
        self.rng_seed = rng_seed
        self.peak = peak or {}
        self.min_run_time_s = min_run_time_s
        self.timing_mode = timing_mode
        self.record = record or TaskRecord(id=self.task_cls.id)
        self._workdir = workdir

    # -- environment ----------------------------------------------------------------
    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def sync(self) -> None:
        """Wait for queued device work (a no-op on CPU)."""
        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded with ``rng_seed + offset`` (create data on CPU, then move)."""
        return torch.Generator().manual_seed(self.rng_seed + offset)

    @property
    def workdir(self) -> Path:
        """A scratch folder for this task's files (traces, checkpoints, event files), removed with
        the context unless ``$DRILLS_KEEP_WORKDIR`` is 1."""
        if self._workdir is None:
            scratch = os.environ.get("DRILLS_SCRATCH_DIR") or None  # the runner's worker folder
            scratch = scratch if scratch and os.path.isdir(scratch) else None
            self._workdir = Path(tempfile.mkdtemp(prefix=f"drills-{self.task_cls.id}-", dir=scratch))
            # a folder the context made is removed with it (at the latest when the interpreter
            # exits): nothing a task starts outlives it; DRILLS_KEEP_WORKDIR=1 keeps it to look at
            if os.environ.get("DRILLS_KEEP_WORKDIR", "") != "1":
                weakref.finalize(self, shutil.rmtree, self._workdir, True)
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir

    def has(self, *caps: str) -> bool:
        """True when every capability is present (no record is made)."""
        return not capabilities.missing(list(caps))

    def require(self, *caps: str, part: str) -> bool:
        """True when every capability is present; else record ``part`` as skipped.

        Use for the parts of a task that need more than the rest::

            if ctx.require("cuda", part="H2D GB/s pinned vs pageable"):
                ...
        """
        miss = capabilities.missing(list(caps))
        if miss:
            self.skip_part(part, capabilities.skip_reason(miss))
            return False
        return True

    def skip_part(self, part: str, reason: str) -> None:
        entry = {"part": part, "reason": reason}
        if entry not in self.record.skipped_parts:
            self.record.skipped_parts.append(entry)

    def implementations(self, task: Task | type[Task], *, bench: bool = False) -> list[ImplSpec]:
        """Implementations runnable here; the others are recorded as skipped parts."""
        out = []
        for spec in task.implementations():
            need = list(spec.requires) + (list(spec.bench_requires) if bench else [])
            miss = capabilities.missing(need)
            if miss:
                what = "timing of" if bench and not capabilities.missing(list(spec.requires)) else "implementation"
                self.skip_part(f"{what} {spec.name}", capabilities.skip_reason(miss))
                continue
            out.append(spec)
        return out

    # -- checks ---------------------------------------------------------------------
    def assert_close(
        self,
        actual: Any,
        expected: Any,
        *,
        name: str = "output",
        where: str | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        equal_nan: bool = False,
    ) -> CheckResult:
        """Compare and record; raise :class:`CheckFailed` on mismatch.

        Comparisons with the same ``name`` merge into one entry of the record (max error
        over trials and configs, count of comparisons). Tolerance defaults to the task's
        ``tolerances`` override for the expected dtype, else the harness table.
        """
        if rtol is None and atol is None:
            leaves = [x for x in torch.utils._pytree.tree_flatten(expected)[0] if isinstance(x, torch.Tensor)]
            if leaves and leaves[0].dtype in self.task_cls.tolerances:
                tol = self.task_cls.tolerances[leaves[0].dtype]
                rtol, atol = tol.rtol, tol.atol
        if len(self.task_cls.check_dtypes) > 1:  # keep each dtype's errors and tolerance apart
            name = f"{name} ({str(self.dtype).replace('torch.', '')})"
        c = compare(actual, expected, name=name, rtol=rtol, atol=atol, equal_nan=equal_nan)
        entry = self.record.checks.get(name)
        if entry is None:
            entry = self.record.checks[name] = {
                "name": name,
                "passed": True,
                "n": 0,
                "max_abs_err": 0.0,
                "max_rel_err": 0.0,
                "rtol": c.rtol,
                "atol": c.atol,
            }
        entry["n"] += 1
        for k in ("max_abs_err", "max_rel_err"):
            v = getattr(c, k)
            entry[k] = None if (entry[k] is None or not math.isfinite(v)) else max(entry[k], _sig(v))
        if not c.passed:
            entry["passed"] = False
            entry["message"] = (f"{where}: " if where else "") + c.message
            _recorded(self.record, "check")
            raise CheckFailed(entry["message"])
        _recorded(self.record, "check")
        return c

    def expect(self, condition: bool, message: str, *, name: str | None = None) -> None:
        """Record a property check; raise :class:`CheckFailed` with ``message`` when false."""
        key = name or message[:60]
        entry = self.record.checks.setdefault(key, {"name": key, "passed": True, "n": 0})
        entry["n"] += 1
        if not condition:
            entry["passed"] = False
            entry["message"] = message
        _recorded(self.record, "check")
        if not condition:
            raise CheckFailed(message)

    def expect_raises(
        self,
        exc: type[BaseException] | tuple[type[BaseException], ...],
        fn: Callable[[], Any],
        *,
        match: str | None = None,
        name: str,
    ) -> BaseException:
        """Check that ``fn()`` raises ``exc`` (whose message contains ``match``)."""
        try:
            fn()
        except exc as e:  # noqa: PERF203 - the point is the exception
            ok = match is None or match.lower() in str(e).lower()
            self.expect(ok, f"{name}: raised {type(e).__name__} but the message {str(e)!r} lacks {match!r}", name=name)
            return e
        except Exception as e:
            self.expect(False, f"{name}: expected {exc}, got {type(e).__name__}: {e}", name=name)
        self.expect(False, f"{name}: expected {exc} to be raised, nothing was", name=name)
        raise AssertionError("unreachable")

    # -- measurements -----------------------------------------------------------------
    def measure(
        self,
        impl: str,
        prepared: Prepared | Callable[[], Any],
        *,
        config: Any = None,
        mode: str | None = None,
        min_run_time_s: float | None = None,
        waits: bool = False,
        **extra: float,
    ) -> Measurement:
        """Time ``prepared.fn`` and record it with derived GFLOP/s, GB/s, % of peak, throughput.

        ``extra`` adds metrics to the same row (e.g. ``peak_mem_mb=...``). ``waits=True``
        for work that waits by design (server round trip, data loader, process group,
        GPU sync): preemption is then judged by run-queue delay and CPU pressure, not by
        CPU time (harness.timing; the row says ``waits: true``); a ``Prepared`` with
        ``waits=True`` asks for the same.
        """
        if not isinstance(prepared, Prepared):
            prepared = Prepared(fn=prepared)
        with warnings.catch_warnings():
            # the noise warning is recorded per row by record_measurement instead
            warnings.simplefilter("ignore", NoisyMeasurementWarning)
            m = measure(
                prepared.fn,
                self.device,
                mode=mode or self.timing_mode,
                min_run_time_s=self.min_run_time_s if min_run_time_s is None else min_run_time_s,
                waits=waits or prepared.waits,
            )
        self.record_measurement(
            impl,
            m,
            config=config,
            flops=prepared.flops,
            bytes=prepared.bytes,
            items=prepared.items,
            item_unit=prepared.item_unit,
            **extra,
        )
        return m

    def record_measurement(
        self,
        impl: str,
        m: Measurement,
        *,
        config: Any = None,
        flops: float | None = None,
        bytes: float | None = None,
        items: float | None = None,
        item_unit: str | None = None,
        **extra: float,
    ) -> dict[str, Any]:
        """Record a measurement taken by :meth:`measure` or elsewhere (e.g. inside worker
        processes: build a :class:`harness.timing.Measurement` from their per-call times).

        Adds GFLOP/s and GB/s (with % of this device's measured peak) when ``flops`` /
        ``bytes`` per call are given, and ``<item_unit>_per_s`` for ``items`` per call.
        """
        row: dict[str, Any] = {
            "impl": impl,
            "config": config_label(config) if config is not None else "",
            "dtype": str(self.dtype).replace("torch.", ""),
            **m.to_json(),
        }
        sec = m.median_ms / 1e3
        if flops and sec > 0:
            from harness.peak import peak_key

            row["gflops"] = _sig(flops / sec / 1e9)
            key = peak_key(self.dtype)  # the peak of the measured dtype; none measured for it: no %
            if key and self.peak.get(key):
                row["pct_peak_flops"] = _sig(100 * row["gflops"] / self.peak[key])
        if bytes and sec > 0:
            row["gbps"] = _sig(bytes / sec / 1e9)
            if self.peak.get("copy_gbps"):
                row["pct_peak_bw"] = _sig(100 * row["gbps"] / self.peak["copy_gbps"])
        over = [k for k in ("pct_peak_flops", "pct_peak_bw") if (row.get(k) or 0) > 100]
        if over:  # beyond the measured ceiling: flagged, never shown as fact
            row["pct_peak_suspect"] = True
            msg = (
                f"{impl} [{row['config']}]: " + ", ".join(f"{k} = {row[k]:.0f}%" for k in over) + " of the "
                "measured peak: over 100% is not a fact (data served from cache, a peak measured under load, "
                "or a wrong flop/byte count)"
            )
            if msg not in self.record.warnings:
                self.record.warnings.append(msg)
        if items and sec > 0:
            row[f"{item_unit or 'items'}_per_s"] = _sig(items / sec)
        for k, v in extra.items():
            row[k] = _finite(v)
        if m.contended:  # fewer than 5 clean samples: not precise (harness.timing)
            msg = f"{impl} [{row['config']}]: contended measurement: {m.contended_reason}"
            if msg not in self.record.warnings:
                self.record.warnings.append(msg)
        if m.noisy:
            msg = (
                f"{impl} [{row['config']}]: noisy measurement: IQR/median = {m.noise:.0%} "
                f"(> {NOISE_THRESHOLD:.0%}); differences below this spread are noise"
            )
            if msg not in self.record.warnings:
                self.record.warnings.append(msg)
        self.record.measurements.append(row)
        _recorded(self.record, "measurement")
        return row

    def metric(self, name: str, value: float) -> None:
        """Record a scalar; put the unit in the name (``final_loss``, ``peak_rss_mb``)."""
        v = float(value)
        self.record.metrics[name] = _finite(_sig(v, 6))
        _recorded(self.record, "metric")

    def curve(
        self,
        name: str,
        x: Sequence[float],
        y: Sequence[float],
        *,
        x_label: str = "step",
        y_label: str | None = None,
        series: str | None = None,
        log_x: bool = False,
        log_y: bool = False,
    ) -> None:
        """Record a curve; curves sharing ``name`` are drawn in one chart, one line per ``series``."""
        if len(x) != len(y):
            raise ValueError(f"curve {name!r}: x has {len(x)} points, y has {len(y)}")
        self.record.curves.append(
            {
                "name": name,
                "series": series or name,
                "x_label": x_label,
                "y_label": y_label or name,
                "x": [_finite(_sig(float(v), 6)) for v in x],
                "y": [_finite(_sig(float(v), 6)) for v in y],
                "log_x": log_x,
                "log_y": log_y,
            }
        )
        _recorded(self.record, "curve")

    def table(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Record a table (list of flat dicts with the same keys) for the report."""
        self.record.tables.append({"name": name, "rows": rows})
        _recorded(self.record, "table")

    def image(
        self,
        name: str,
        img: Any,
        *,
        caption: str = "",
        vmin: float | None = None,
        vmax: float | None = None,
        nrow: int | None = None,
    ) -> None:
        """Record a picture for the report: a small PNG (see :func:`harness.images.encode_image`).

        Args:
            img: (H, W) grey, (C, H, W) with C in {1, 3}, or a batch (N, C, H, W) laid out
                as a grid of ``nrow`` columns; float values mapped from [vmin, vmax] (default:
                the tensor's own min and max) to 0..255.
            caption: what the picture shows (inputs, a sample grid, an attention map...).

        Pictures over the per-record budget are dropped with a warning, never silently.
        """
        entry = encode_image(name, img, caption=caption, vmin=vmin, vmax=vmax, nrow=nrow)
        self._add_picture(entry)

    def heatmap(
        self,
        name: str,
        z: Any,
        *,
        x: Sequence[Any] | None = None,
        y: Sequence[Any] | None = None,
        x_label: str = "",
        y_label: str = "",
        caption: str = "",
    ) -> None:
        """Record a 2-D array (rows = y, columns = x) the report draws as a plotly heatmap.

        Values are kept to 3 significant digits; arrays over 128 x 128 are average-pooled
        down (attention maps, per-layer gradient norms over steps, weight-update ratios).
        """
        entry = encode_heatmap(name, z, x=x, y=y, x_label=x_label, y_label=y_label, caption=caption)
        self._add_picture(entry)

    def _add_picture(self, entry: dict[str, Any]) -> None:
        from harness.images import RECORD_BUDGET_BYTES, entry_bytes

        used = sum(entry_bytes(e) for e in self.record.images)
        if used + entry_bytes(entry) > RECORD_BUDGET_BYTES:
            self.record.warnings.append(
                f"picture {entry['name']!r} dropped: the task's pictures would exceed "
                f"{RECORD_BUDGET_BYTES // 1024} KiB in the run record"
            )
            return
        self.record.images.append(entry)
        _recorded(self.record, "image")

    def note(self, text: str) -> None:
        self.record.notes.append(text)
        _recorded(self.record, "note")
