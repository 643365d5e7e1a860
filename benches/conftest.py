"""pytest front end, set-up: the ``--drills-*`` options and one test per registry entry.

``benches/test_tasks.py`` holds two tests, parametrised here from the registry (so a new
task file under ``benches/<area>/`` shows up without touching either file):

* ``test_check[<task id>]``: the task's correctness check, on the ``tiny`` size;
* ``test_bench[<task id>-<impl>]``: one pytest-benchmark test per implementation.

Options (also valid as ``pytest --drills-size cpu`` when ``benches`` is a testpath):

* ``--drills-size``: size preset whose FIRST config the benchmarks time; default ``tiny``
  on CPU (seconds for the whole suite), ``gpu`` on CUDA.
* ``--drills-device``: ``auto`` (cuda when present), ``cpu``, ``cuda`` or ``cuda:N``.

The project's ``addopts`` carry ``--benchmark-disable`` so that plain ``pytest`` is
correctness-only. pytest-benchmark refuses ``--benchmark-only`` together with
``--benchmark-disable``; :func:`pytest_configure` therefore lets an explicit
``--benchmark-only`` on the command line win over the addopts default (same effect as
adding ``--benchmark-enable``), so ``pytest benches --benchmark-only`` times.

This module and ``test_tasks.py`` import no pytest at the top level on purpose: asv's
benchmark discovery imports every module of ``benches/`` (its benchmark_dir) in an
environment that has the project's dependencies only, where pytest is absent.
"""

from __future__ import annotations

SIZES = ("tiny", "cpu", "gpu")  # harness.contract.SIZE_PRESETS (not imported here: see above)


def pytest_addoption(parser):
    group = parser.getgroup("drills", "torchdrills benchmarks (benches/)")
    group.addoption(
        "--drills-size",
        choices=SIZES,
        default=None,
        help="size preset timed by test_bench (its first config); default tiny on CPU, gpu on CUDA",
    )
    group.addoption(
        "--drills-device",
        default="auto",
        help="device for benches/ tests: auto (cuda if present), cpu, cuda, cuda:N; default auto",
    )


def pytest_configure(config):
    # Runs before pytest-benchmark's own pytest_configure (that one is trylast) builds its
    # session, which raises UsageError on --benchmark-only + --benchmark-disable. Only an
    # explicit --benchmark-only typed by the user counts; addopts are not in invocation args.
    args = [str(a) for a in config.invocation_params.args]
    if hasattr(config.option, "benchmark_enable"):  # else pytest-benchmark is not installed
        if "--benchmark-only" in args and "--benchmark-disable" not in args:
            config.option.benchmark_enable = True

    import pytest  # here, not at the top: see the module docstring

    from harness.runner import resolve_device

    try:  # fail at start-up, not once per test, on --drills-device cuda without a GPU
        resolve_device(config.getoption("drills_device"))
    except ValueError as e:
        raise pytest.UsageError(f"--drills-device: {e}") from None


def pytest_generate_tests(metafunc):
    names = metafunc.fixturenames
    if "drills_task_id" not in names:
        return
    from harness.registry import REGISTRY

    tasks = REGISTRY.all()
    if "drills_impl" in names:
        pairs = [(t.id, s.name) for t in tasks for s in t.implementations()]
        metafunc.parametrize(("drills_task_id", "drills_impl"), pairs, ids=[f"{t}-{i}" for t, i in pairs])
    else:
        ids = [t.id for t in tasks]
        metafunc.parametrize("drills_task_id", ids, ids=ids)
