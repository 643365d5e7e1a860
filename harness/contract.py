"""The contract's shared vocabulary: a leaf module every other harness module may import.

What a task declares and the harness passes around, with no dependency on the task base
class, the context or the registry (so those three import this and not each other):

* :data:`SIZE_PRESETS` and :func:`default_size`: the one rule for which preset a mode runs
  on a device, used by the CLI, the pytest front end and asv alike;
* :class:`ImplSpec` / :func:`impl`: an implementation (operator tasks) or variant;
* :class:`Prepared`: what the timer runs;
* :func:`config_label`: how a config is named in records;
* :class:`RegistryError`: a registration or lookup problem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

KINDS: tuple[str, ...] = ("operator", "training", "comparison", "system")
#: Front ends that pick a default size (see :func:`default_size`).
FRONT_ENDS: tuple[str, ...] = ("drills", "pytest", "asv")


class RegistryError(Exception):
    """A registration or lookup problem; the message says what and how to fix it."""


def default_size(mode: str, device_type: str, front_end: str = "drills") -> str:
    """The size preset a mode runs when the user names none: the one rule for every front end.

    * checks run ``tiny`` everywhere (seconds on a CPU; properties, not speed);
    * benchmarks run ``gpu`` on CUDA and ``cpu`` on a CPU (``drills bench``, asv);
    * except pytest-benchmark on a CPU, which times ``tiny``: ``pytest benches
      --benchmark-only`` is the quick front end (one call per implementation in CI-sized
      time), and ``drills bench`` is the reference measurement.

    Raises:
        ValueError: an unknown mode, device type or front end.
    """
    if mode not in ("check", "bench", "run"):
        raise ValueError(f"unknown mode {mode!r}; valid: check, bench, run")
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device type {device_type!r}; valid: cpu, cuda")
    if front_end not in FRONT_ENDS:
        raise ValueError(f"unknown front end {front_end!r}; valid: {', '.join(FRONT_ENDS)}")
    if mode == "check":
        return "tiny"
    if device_type == "cuda":
        return "gpu"
    return "tiny" if front_end == "pytest" else "cpu"


SIZE_PRESETS: tuple[str, ...] = ("tiny", "cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class ImplSpec:
    """One implementation (operator tasks) or variant (other kinds) of a task.

    Attributes:
        name: shown in results, reports, pytest ids and asv params.
        baseline: the implementation others are compared against (speedup = baseline / this).
        requires: capabilities needed to run it at all (check and bench).
        bench_requires: extra capabilities needed to *time* it meaningfully (e.g. a
            Triton kernel is checked in the interpreter on CPU but timed only on cuda).
        method: attribute name on the task class (operator tasks), else None.
    """

    name: str
    baseline: bool = False
    requires: tuple[str, ...] = ()
    bench_requires: tuple[str, ...] = ()
    method: str | None = None


def impl(
    fn: Callable | None = None,
    *,
    baseline: bool = False,
    requires: Sequence[str] = (),
    bench_requires: Sequence[str] = (),
    name: str | None = None,
):
    """Mark an operator-task method as an implementation.

    The method takes the inputs (as returned by ``inputs``) and returns a
    zero-argument closure computing the output: set-up work goes before the closure.
    """

    def mark(f: Callable) -> Callable:
        f._drills_impl = ImplSpec(  # type: ignore[attr-defined]  # a marker attribute on the function
            name=name or f.__name__,
            baseline=baseline,
            requires=tuple(requires),
            bench_requires=tuple(bench_requires),
            method=f.__name__,
        )
        return f

    return mark(fn) if fn is not None else mark


@dataclasses.dataclass
class Prepared:
    """What the timer runs for one (implementation, config).

    Attributes:
        fn: zero-argument callable; the timed region.
        flops: floating-point operations of one call (for GFLOP/s), if meaningful.
        bytes: minimum bytes moved through memory by one call (each input read once,
            each output written once) for GB/s, if meaningful.
        items: work items per call (samples, tokens, images, rows) for a throughput.
        item_unit: plural noun for ``items``; the metric is named ``<item_unit>_per_s``.
        teardown: called once after timing (stop a server, free a process group).
        waits: the timed work waits by design (a data loader, a server round trip): timed as
            ``ctx.measure(..., waits=True)`` is, whoever measures it.
    """

    fn: Callable[[], Any]
    flops: float | None = None
    bytes: float | None = None
    items: float | None = None
    item_unit: str | None = None
    teardown: Callable[[], None] | None = None
    waits: bool = False


def config_label(config: Any) -> str:
    """Short label for a config: its ``label`` attribute or ``k=v`` of its fields."""
    if hasattr(config, "label"):
        lab = config.label
        return lab() if callable(lab) else str(lab)
    if dataclasses.is_dataclass(config):
        return ",".join(f"{f.name}={getattr(config, f.name)}" for f in dataclasses.fields(config) if f.repr)
    return str(config)
