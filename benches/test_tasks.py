"""pytest front end: a correctness test per task and a pytest-benchmark test per implementation.

Run::

    pytest benches --benchmark-disable          # correctness only (the project default)
    pytest benches --benchmark-only             # timing only, tiny size on CPU
    pytest benches --benchmark-only --drills-size cpu --benchmark-json out.json

Test ids are ``test_check[<task id>]`` and ``test_bench[<task id>-<impl>]`` (e.g.
``test_bench[fundamentals.manual_matmul-loop]``), parametrised in ``benches/conftest.py``
from the registry. A task or implementation whose capabilities are missing is skipped
with the capability named (``needs cuda``).

The benchmark test builds the task's :class:`harness.task.Prepared` outside the timed
region and times ``fn()`` followed by a device synchronise, in pytest-benchmark's
pedantic mode; ``benchmark.extra_info`` carries task id, implementation, config,
device, dtype and size, flops/bytes per call where the task defines them, and the
GFLOP/s and GB/s of the median round. The harness timer (``drills bench``) remains the
reference measurement; this front end is for pytest-benchmark's tooling (``--benchmark-
compare``, histograms, JSON).
"""

from __future__ import annotations

import time

import torch

from harness import capabilities
from harness.context import Context
from harness.contract import default_size
from harness.registry import REGISTRY
from harness.runner import resolve_device, run_task
from harness.task import config_label

try:
    import pytest
except ImportError:  # asv's discovery imports this module where pytest is absent; see conftest.py
    pytest = None

#: Seconds of timed rounds per benchmark test, and the least time one round should take
#: (shorter calls are repeated ``iterations`` times per round, over timer resolution).
ROUND_BUDGET_S = 0.5
MIN_ROUND_S = 1e-3


def _device(request) -> torch.device:
    # validated at start-up by conftest.pytest_configure
    return resolve_device(request.config.getoption("drills_device"))


def test_registry_loads():
    """Every task file under benches/<area>/ imports; a broken one would vanish silently."""
    REGISTRY.load()
    if REGISTRY.load_errors:
        pytest.fail(
            "task files that failed to import:\n"
            + "\n".join(f"--- {path}\n{tb}" for path, tb in REGISTRY.load_errors.items()),
            pytrace=False,
        )


def test_check(drills_task_id, request):
    """The task's check on the tiny size, in this process (same path as ``drills check``)."""
    cls = REGISTRY.get(drills_task_id)
    entry = run_task(cls, mode="check", device=_device(request), size="tiny")
    status = entry["status"]
    if status == "skip":
        pytest.skip(entry["reason"])
    if status != "pass":
        detail = entry.get("error", "")
        pytest.fail(f"{drills_task_id}: {status}: {entry['reason']}" + (f"\n{detail}" if detail else ""), pytrace=False)


def _plan(run) -> tuple[int, int]:
    """(rounds, iterations): each round >= MIN_ROUND_S, all rounds about ROUND_BUDGET_S.

    The first, untimed call pays for first-call work (compilation, allocator warm-up);
    then batches of 1, 4, 16, ... calls measure the cost of one call.
    """
    run()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            run()
        elapsed = time.perf_counter() - t0
        if elapsed >= MIN_ROUND_S / 4 or n >= 1024:
            break
        n *= 4
    per_call = max(elapsed / n, 1e-8)
    iterations = max(1, min(10_000, round(MIN_ROUND_S / per_call)))
    rounds = max(3, min(200, int(ROUND_BUDGET_S / (per_call * iterations))))
    return rounds, iterations


def test_bench(drills_task_id, drills_impl, benchmark, request):
    """Time one implementation on the first config of ``--drills-size`` (pedantic, synchronised)."""
    cls = REGISTRY.get(drills_task_id)
    device = _device(request)
    miss = capabilities.missing(list(cls.requires))
    if miss:
        pytest.skip(capabilities.skip_reason(miss))
    spec = next(s for s in cls.implementations() if s.name == drills_impl)
    miss = capabilities.missing(list(spec.requires) + list(spec.bench_requires))
    if miss:
        pytest.skip(capabilities.skip_reason(miss))

    # the project's one rule: tiny on CPU for this quick front end, gpu on CUDA (harness.contract)
    size = request.config.getoption("drills_size") or default_size("bench", device.type, "pytest")
    dtype = cls.bench_dtypes.get(device.type, torch.float32)
    task = cls()
    ctx = Context(task, mode="bench", device=device, dtype=dtype, size=size, rng_seed=0)
    config = ctx.configs[0]
    torch.manual_seed(0)
    try:
        prepared = task.prepare(ctx, drills_impl, config)
    except NotImplementedError as e:  # tasks that time themselves in bench(): `drills bench` times them
        pytest.skip(f"no prepare() to time: {e}")

    fn, sync = prepared.fn, ctx.sync

    def run():
        fn()
        sync()  # CUDA launches are asynchronous: time the work, not the launch

    info = {
        "task_id": drills_task_id,
        "impl": drills_impl,
        "config": config_label(config),
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "size": size,
    }
    for key in ("flops", "bytes", "items", "item_unit"):
        value = getattr(prepared, key)
        if value is not None:
            info[key] = value
    benchmark.group = drills_task_id  # the table compares the implementations of one task
    benchmark.extra_info.update(info)
    try:
        if benchmark.disabled:  # --benchmark-disable: one call, a smoke test of the timed path
            benchmark.pedantic(run, rounds=1, iterations=1)
            return
        rounds, iterations = _plan(run)
        benchmark.pedantic(run, rounds=rounds, iterations=iterations, warmup_rounds=1)
        median_s = benchmark.stats.stats.median
        if median_s > 0:
            if prepared.flops:
                benchmark.extra_info["gflops"] = round(prepared.flops / median_s / 1e9, 4)
            if prepared.bytes:
                benchmark.extra_info["gbps"] = round(prepared.bytes / median_s / 1e9, 4)
    finally:
        if prepared.teardown is not None:
            prepared.teardown()
