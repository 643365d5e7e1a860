"""asv front end: one asv benchmark class per registered task, one param per implementation.

For task ``fundamentals.manual_matmul`` this module holds the class
``fundamentals__manual_matmul`` with ``params = [implementation names]``,
``param_names = ["impl"]`` and the benchmarks

* ``time_run``: one call of the implementation (``Prepared.fn``) plus a device synchronise;
* ``peakmem_run``: peak resident memory of the benchmark process around that call;
* ``track_gflops`` / ``track_gbps`` (only for tasks that define ``flops`` / ``bytes``):
  GFLOP/s and GB/s (10**9 per second) from the harness timer's median.

``setup`` builds the inputs (``task.prepare``) on the device (``cuda`` when present,
``DRILLS_ASV_DEVICE`` to override) at the FIRST config of the ``gpu`` or ``cpu`` size
(``DRILLS_ASV_SIZE=tiny|cpu|gpu`` to override), then makes one untimed warm-up call.
It raises ``NotImplementedError``, which
asv records as skipped (n/a) rather than failed, when the task or implementation does
not exist at the commit being measured, when a capability it needs is missing, or when
the task has no ``prepare`` (it times itself in ``bench``; use ``drills bench``).

Which code is measured. asv imports this module from the WORKING TREE: its importer
maps the name ``benches`` to ``<benchmark_dir>``. ``harness`` and the task files come
from the project installed in asv's environment for the commit being measured (the
registry loads task files next to the installed ``harness``; see harness/registry.py).
Set ``DRILLS_ASV_VERBOSE=1`` and pass ``--show-stderr`` to see both paths per benchmark.

Why the class list does not always come from the installed registry. asv discovers
benchmarks once, in the environment of the newest commit, stores their names and
params in ``<results_dir>/benchmarks.json``, and later asks for "class.method, param
index N" in every commit's environment. An older commit may lack a task (its class
must still exist, to be skipped) or list fewer implementations (index N must still
mean the same implementation). So when this module is imported to *run* a benchmark,
classes and params are taken from that ``benchmarks.json``; during discovery, and
outside asv, from the installed registry. Discovery itself only imports task files and
reads class attributes: no inputs are built at import.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

SIZE_ENV = "DRILLS_ASV_SIZE"


def _default_size(device_type: str) -> str:
    """The project's one rule (harness.contract.default_size); commits from before it existed
    (asv installs the harness of each commit) used the same answer: gpu on CUDA, else cpu."""
    try:
        from harness.contract import default_size
    except ImportError:
        return "gpu" if device_type == "cuda" else "cpu"
    return default_size("bench", device_type, "asv")


DEVICE_ENV = "DRILLS_ASV_DEVICE"
VERBOSE_ENV = "DRILLS_ASV_VERBOSE"
#: Seconds asv allows one benchmark (setup + all samples). Training-run tasks take long
#: on a 2-core CPU; asv's default of 60 s would record them as failed.
TIMEOUT_S = 900.0
#: Seconds of timing per track_* value (the harness timer's min_run_time_s).
TRACK_RUN_TIME_S = 0.5

_HERE = Path(__file__).resolve().parent


def class_name(task_id: str) -> str:
    """asv class name of a task: ``area.slug`` -> ``area__slug`` (a valid identifier)."""
    return task_id.replace(".", "__")


def task_id_of(name: str) -> str:
    """Inverse of :func:`class_name` (areas never contain a double underscore)."""
    area, _, slug = name.partition("__")
    return f"{area}.{slug}"


# -- what to generate ---------------------------------------------------------------------


def _asv_command() -> str | None:
    """The asv_runner command this process serves (``discover``, ``run``, ...), else None."""
    if "asv_runner" not in sys.modules or len(sys.argv) < 2:
        return None
    return sys.argv[1]


def _declares(cls: type, name: str) -> bool:
    """Whether task ``cls`` defines ``flops``/``bytes`` beyond the Operator default (None)."""
    from harness.task import Operator

    own = getattr(cls, name, None)
    return callable(own) and own is not getattr(Operator, name, None)


def _from_registry() -> dict[str, dict]:
    """class name -> {id, impls, tracks} from the installed project's registry."""
    from harness.registry import REGISTRY

    out = {}
    for cls in REGISTRY.all():
        tracks = [m for m, attr in (("track_gflops", "flops"), ("track_gbps", "bytes")) if _declares(cls, attr)]
        out[class_name(cls.id)] = {"id": cls.id, "impls": [s.name for s in cls.implementations()], "tracks": tracks}
    return out


def _results_dir() -> Path | None:
    for conf_dir in (os.environ.get("ASV_CONF_DIR"), str(_HERE.parent)):
        if not conf_dir:
            continue
        conf = Path(conf_dir) / "asv.conf.json"
        try:
            results = json.loads(conf.read_text()).get("results_dir", "results")
        except (OSError, ValueError):
            continue
        return (conf.parent / results).resolve()
    return None


def _from_saved() -> dict[str, dict]:
    """class name -> {id, impls, tracks} from asv's ``benchmarks.json`` of this run, or {}."""
    results = _results_dir()
    if results is None:
        return {}
    try:
        saved = json.loads((results / "benchmarks.json").read_text())
    except (OSError, ValueError):
        return {}
    module = Path(__file__).stem
    out: dict[str, dict] = {}
    for key, bench in saved.items():
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != module or not isinstance(bench, dict):
            continue
        entry = out.setdefault(parts[1], {"id": task_id_of(parts[1]), "impls": [], "tracks": []})
        params = bench.get("params") or [[]]
        entry["impls"] = [ast.literal_eval(p) for p in params[0]]
        if parts[2].startswith("track_"):
            entry["tracks"].append(parts[2])
    return out


def _manifest() -> dict[str, dict]:
    try:
        found = _from_registry()
    except ImportError as e:  # an old commit whose harness lacks what this adapter uses
        print(f"asv_benchmarks: cannot read the installed registry ({e}); using benchmarks.json", file=sys.stderr)
        found = {}
    if _asv_command() not in (None, "discover", "check"):
        found.update(_from_saved())  # a run: keep discovery's classes and param order
    return found


# -- the benchmark classes -------------------------------------------------------------------


def _skip(reason: str) -> NotImplementedError:
    try:  # asv_runner's subclass; raised inside a benchmark it records n/a, not a failure
        from asv_runner.benchmarks.mark import SkipNotImplemented
    except ImportError:
        return NotImplementedError(reason)
    return SkipNotImplemented(reason)


class _TaskBenchmark:
    """Base of the generated classes; its leading underscore keeps asv from collecting it."""

    task_id = ""
    params: list = []
    param_names = ["impl"]
    timeout = TIMEOUT_S

    def setup(self, impl):
        self._prepared = None
        try:
            import torch

            from harness import capabilities
            from harness.context import Context
            from harness.registry import REGISTRY
            from harness.runner import resolve_device
        except ImportError as e:
            raise NotImplementedError(f"the harness at this commit lacks what the asv adapter needs: {e}") from e
        if self.task_id not in REGISTRY:
            raise NotImplementedError(f"task {self.task_id} does not exist at this commit")
        cls = REGISTRY.get(self.task_id)
        spec = next((s for s in cls.implementations() if s.name == impl), None)
        if spec is None:
            raise NotImplementedError(f"{self.task_id} has no implementation {impl!r} at this commit")
        miss = capabilities.missing(list(cls.requires) + list(spec.requires) + list(spec.bench_requires))
        if miss:
            raise NotImplementedError(capabilities.skip_reason(miss))
        device = resolve_device(os.environ.get(DEVICE_ENV, "auto"))
        size = os.environ.get(SIZE_ENV) or _default_size(device.type)
        dtype = cls.bench_dtypes.get(device.type, torch.float32)
        task = cls()
        # configs() raises ValueError naming the valid sizes for a bad DRILLS_ASV_SIZE
        self._ctx = Context(task, mode="bench", device=device, dtype=dtype, size=size, rng_seed=0)
        torch.manual_seed(0)
        # NotImplementedError (no prepare()) propagates: asv records the benchmark as skipped
        self._prepared = task.prepare(self._ctx, impl, self._ctx.configs[0])
        # One untimed call: first-call work (lazy init, thread pool start, compilation) is
        # not what is measured, and `asv run --quick` times a single call with no warm-up.
        self._prepared.fn()
        self._ctx.sync()
        if os.environ.get(VERBOSE_ENV):
            import harness

            print(
                f"asv_benchmarks: {self.task_id}[{impl}] harness={harness.__file__} "
                f"task_file={sys.modules[cls.__module__].__file__} adapter={__file__} "
                f"commit={os.environ.get('ASV_COMMIT', '?')} device={device} size={size}",
                file=sys.stderr,
            )

    def teardown(self, impl):
        prepared = getattr(self, "_prepared", None)
        if prepared is not None and prepared.teardown is not None:
            prepared.teardown()

    def time_run(self, impl):
        self._prepared.fn()
        self._ctx.sync()  # CUDA work is asynchronous: time it, not its launch

    def peakmem_run(self, impl):
        self._prepared.fn()
        self._ctx.sync()

    def _rate(self, amount: float | None, what: str) -> float:
        """``amount`` per second of the harness timer's median, in units of 10**9."""
        if not amount:
            raise _skip(f"{self.task_id} reports no {what} for this config")
        from harness.timing import measure

        m = measure(self._prepared.fn, self._ctx.device, min_run_time_s=TRACK_RUN_TIME_S)
        return amount / (m.median_ms / 1e3) / 1e9

    def track_gflops(self, impl):
        return self._rate(self._prepared.flops, "flops")

    track_gflops.unit = "GFLOP/s"

    def track_gbps(self, impl):
        return self._rate(self._prepared.bytes, "bytes")

    track_gbps.unit = "GB/s"


def _make_class(name: str, entry: dict) -> type:
    attrs = {
        "task_id": entry["id"],
        "params": list(entry["impls"]),
        "__module__": __name__,
        "__doc__": f"asv benchmarks of task {entry['id']} (one param per implementation).",
    }
    # A task without flops/bytes gets no track_* benchmark (asv would list n/a for ever).
    for track in ("track_gflops", "track_gbps"):
        if track not in entry["tracks"]:
            attrs[track] = None
    return type(name, (_TaskBenchmark,), attrs)


def _generate() -> None:
    for name, entry in sorted(_manifest().items()):
        if entry["impls"]:  # a task with no implementation has nothing to time
            globals()[name] = _make_class(name, entry)


_generate()
