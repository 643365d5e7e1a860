"""The pytest front end (benches/test_tasks.py): ids, check outcomes, skips, benchmark JSON.

Each test runs pytest on ``benches/`` in a subprocess (the registry is loaded once per
process, and planted tasks come in through ``DRILLS_TASKS_DIR``), filtered with ``-k``
so that it stays within seconds however many tasks the registry holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import capabilities

REPO = Path(__file__).resolve().parents[2]
MATMUL_IMPLS = ["torch_matmul", "loop", "broadcast_sum", "blocked"]


def run_pytest(*args: str, tasks_dir: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    if tasks_dir is not None:
        env["DRILLS_TASKS_DIR"] = str(tasks_dir)
    cmd = [sys.executable, "-m", "pytest", "benches", "-p", "no:cacheprovider", "-rA", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _missing_capability() -> str:
    missing = [name for name, ok in capabilities.detect().items() if not ok]
    if not missing:
        pytest.skip("every capability is present here: no missing one to plant")
    return missing[0]


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory) -> tuple[Path, str]:
    """Tasks with a wrong implementation, a missing task capability, a missing bench capability."""
    root = tmp_path_factory.mktemp("planted_tasks")
    cap = _missing_capability()
    (root / "fundamentals").mkdir()
    (root / "fundamentals" / "frontend_probe.py").write_text(
        textwrap.dedent(f'''
        """Planted tasks for tests/frontends: not part of the catalogue."""
        import torch

        from harness import Operator, impl, task


        class _Base(Operator):
            """Doubling: a planted task."""
            sizes = {{"tiny": [4], "cpu": [8]}}

            def inputs(self, config, device, dtype, seed):
                g = torch.Generator().manual_seed(seed)
                return (torch.randn(config, generator=g, dtype=dtype).to(device),)

            def reference(self, x):
                return 2 * x

            @impl(baseline=True)
            def good(self, x):
                return lambda: x + x


        @task("fundamentals.frontend_probe_wrong", seed="1.98", title="planted: wrong")
        class Wrong(_Base):
            """Doubling with an off-by-one implementation: the check must fail naming it."""

            @impl
            def off_by_one(self, x):
                return lambda: 2 * x + 1


        @task("fundamentals.frontend_probe_needs", seed="1.99", title="planted: needs {cap}")
        class Needs(_Base):
            """Doubling that asks for {cap}: skipped with that name where it is missing."""
            requires = ("{cap}",)


        @task("fundamentals.frontend_probe_bench", seed="1.97", title="planted: bench needs {cap}")
        class BenchNeeds(_Base):
            """Doubling whose second implementation is timed only with {cap}."""

            @impl(bench_requires=("{cap}",))
            def later(self, x):
                return lambda: x * 2
    ''')
    )
    return root, cap


def test_benchmark_only_json_carries_task_and_impl(tmp_path):
    out = tmp_path / "bench.json"
    # --benchmark-only must win over the --benchmark-disable of the project's addopts
    res = run_pytest("-k", "manual_matmul", "--benchmark-only", f"--benchmark-json={out}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Skipping non-benchmark" in res.stdout  # test_check is not a benchmark
    data = json.loads(out.read_text())
    rows = {b["name"]: b for b in data["benchmarks"]}
    assert sorted(rows) == sorted(f"test_bench[fundamentals.manual_matmul-{n}]" for n in MATMUL_IMPLS)
    for name in MATMUL_IMPLS:
        b = rows[f"test_bench[fundamentals.manual_matmul-{name}]"]
        info = b["extra_info"]
        assert info["task_id"] == "fundamentals.manual_matmul" and info["impl"] == name
        assert info["size"] == "tiny" and info["device"] == "cpu" and info["dtype"] == "float32"
        assert info["config"] == "m=7,k=13,n=5,batch=0"
        assert info["flops"] == 2 * 7 * 13 * 5 and info["gflops"] > 0 and info["gbps"] > 0
        assert b["group"] == "fundamentals.manual_matmul"
        assert b["stats"]["rounds"] >= 3 and b["stats"]["median"] > 0


def test_benchmark_disable_is_correctness_only(planted_dir):
    root, cap = planted_dir
    res = run_pytest("-k", "manual_matmul or frontend_probe", "--benchmark-disable", tasks_dir=root)
    out = res.stdout
    assert res.returncode == 1, out  # the planted wrong task fails, the rest pass or skip
    # ids are the task id, and the task id plus the implementation name
    assert "PASSED benches/test_tasks.py::test_check[fundamentals.manual_matmul]" in out
    for name in MATMUL_IMPLS:  # disabled benchmarks still make one smoke call each
        assert f"PASSED benches/test_tasks.py::test_bench[fundamentals.manual_matmul-{name}]" in out
    # the failure names the task, the implementation and the error, without a traceback
    assert "FAILED benches/test_tasks.py::test_check[fundamentals.frontend_probe_wrong]" in out
    assert "fundamentals.frontend_probe_wrong: fail: off_by_one" in out
    # missing capabilities are named
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert sum(f"needs {cap}" in s for s in skips) >= 3, skips  # task check, task bench (x1), later impl


def test_bad_options_are_usage_errors():
    res = run_pytest("--drills-size", "huge", "--collect-only", "-q")
    assert res.returncode == 4 and "invalid choice: 'huge'" in res.stderr
    if not capabilities.detect()["cuda"]:
        res = run_pytest("--drills-device", "cuda", "--collect-only", "-q")
        assert res.returncode == 4 and "--drills-device" in res.stderr and "no CUDA GPU" in res.stderr
