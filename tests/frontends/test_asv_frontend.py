"""The asv front end: asv.conf.json, benches/asv_benchmarks.py, and one real ``asv run``.

The adapter is imported in-process by path (fresh each time, so a test can pose as asv's
benchmark runner); ``test_asv_run_quick_in_a_clone`` (slow) builds the project in a
virtualenv as asv does and times one task.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import capabilities
from harness.registry import REGISTRY

REPO = Path(__file__).resolve().parents[2]
ADAPTER = REPO / "benches" / "asv_benchmarks.py"
MATMUL = "fundamentals.manual_matmul"


def load_adapter(name: str = "asv_benchmarks_under_test"):
    spec = importlib.util.spec_from_file_location(name, ADAPTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def adapter():
    return load_adapter()


def test_asv_conf_json():
    conf = json.loads((REPO / "asv.conf.json").read_text())  # strict JSON, no comments
    assert conf["version"] == 1 and conf["project"] == "torchdrills" and conf["repo"] == "."
    assert conf["benchmark_dir"] == "benches"
    assert conf["launch_method"] == "spawn"  # CUDA does not survive fork
    assert conf["results_dir"] == "results/asv" and conf["html_dir"] == "reports/asv"
    assert conf["environment_type"] == "virtualenv" and conf["branches"] == ["main"]
    assert conf["matrix"]["req"]["torch"] == ["2.13.0"]
    # the project alone: wheeling its dependencies too makes asv stop on "multiple wheels"
    assert all("--no-deps" in cmd for cmd in conf["build_command"] if "wheel" in cmd)
    assert (REPO / conf["benchmark_dir"] / "__init__.py").is_file()


def test_one_class_per_task_with_impls_as_params(adapter):
    tasks = [t for t in REGISTRY.all() if t.implementations()]
    assert tasks
    for t in tasks:
        cls = getattr(adapter, adapter.class_name(t.id))
        assert cls.__name__.isidentifier() and adapter.task_id_of(cls.__name__) == t.id
        assert cls.task_id == t.id and cls.param_names == ["impl"]
        assert cls.params == [s.name for s in t.implementations()]
        assert cls.timeout >= 600
    cls = adapter.fundamentals__manual_matmul
    assert cls.track_gflops.unit == "GFLOP/s" and cls.track_gbps.unit == "GB/s"


def test_setup_and_benchmarks_of_one_impl(adapter, monkeypatch):
    monkeypatch.setenv(adapter.SIZE_ENV, "tiny")
    monkeypatch.setenv(adapter.DEVICE_ENV, "cpu")
    monkeypatch.setattr(adapter, "TRACK_RUN_TIME_S", 0.05)
    b = adapter.fundamentals__manual_matmul()
    b.setup("broadcast_sum")
    try:
        assert b._ctx.size == "tiny" and b._prepared.flops == 2 * 7 * 13 * 5  # first tiny config
        b.time_run("broadcast_sum")
        b.peakmem_run("broadcast_sum")
        assert b.track_gflops("broadcast_sum") > 0 and b.track_gbps("broadcast_sum") > 0
    finally:
        b.teardown("broadcast_sum")


def test_default_size_is_cpu_first_config(adapter, monkeypatch):
    monkeypatch.delenv(adapter.SIZE_ENV, raising=False)
    monkeypatch.setenv(adapter.DEVICE_ENV, "cpu")
    b = adapter.fundamentals__manual_matmul()
    b.setup("torch_matmul")
    assert b._ctx.size == "cpu" and b._prepared.flops == 2 * 32**3


def test_absent_task_or_impl_is_not_implemented(adapter, monkeypatch):
    monkeypatch.setenv(adapter.SIZE_ENV, "tiny")
    gone = adapter._make_class(
        "fundamentals__no_such_task", {"id": "fundamentals.no_such_task", "impls": ["x"], "tracks": []}
    )
    with pytest.raises(NotImplementedError, match="does not exist at this commit"):
        gone().setup("x")
    with pytest.raises(NotImplementedError, match="no implementation 'nope'"):
        adapter.fundamentals__manual_matmul().setup("nope")


def test_missing_capability_is_not_implemented(adapter, monkeypatch):
    task_cls = REGISTRY.get(MATMUL)
    monkeypatch.setattr(task_cls, "requires", ("tensorrt",))
    monkeypatch.setitem(capabilities.detect(), "tensorrt", False)
    with pytest.raises(NotImplementedError, match="needs tensorrt"):
        adapter.fundamentals__manual_matmul().setup("loop")


def test_bad_size_is_an_error_not_a_skip(adapter, monkeypatch):
    monkeypatch.setenv(adapter.SIZE_ENV, "huge")
    with pytest.raises(ValueError, match="valid sizes"):
        adapter.fundamentals__manual_matmul().setup("loop")


def _pose_as_asv(monkeypatch, tmp_path, command: str) -> None:
    (tmp_path / "asv.conf.json").write_text(json.dumps({"results_dir": "res"}))
    (tmp_path / "res").mkdir()
    saved = {  # as discovery at a newer commit wrote it: another order, a task unknown here
        f"asv_benchmarks.fundamentals__manual_matmul.{m}": {
            "params": [["'blocked'", "'loop'"]],
            "param_names": ["impl"],
        }
        for m in ("time_run", "track_gbps")
    }
    saved["asv_benchmarks.fundamentals__added_later.time_run"] = {"params": [["'a'", "'b'"]]}
    saved["version"] = 2
    (tmp_path / "res" / "benchmarks.json").write_text(json.dumps(saved))
    monkeypatch.setenv("ASV_CONF_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["benchmark.py", command, str(REPO / "benches"), "x"])
    monkeypatch.setitem(sys.modules, "asv_runner", sys.modules.get("asv_runner") or type(sys)("asv_runner"))


def test_run_keeps_discoverys_classes_and_param_order(monkeypatch, tmp_path):
    _pose_as_asv(monkeypatch, tmp_path, "run")
    mod = load_adapter()
    assert mod.fundamentals__manual_matmul.params == ["blocked", "loop"]  # index N means what discovery meant
    assert mod.fundamentals__manual_matmul.track_gflops is None and callable(mod.fundamentals__manual_matmul.track_gbps)
    assert mod.fundamentals__added_later.params == ["a", "b"]
    with pytest.raises(NotImplementedError, match="does not exist at this commit"):
        mod.fundamentals__added_later().setup("a")


def test_discovery_uses_the_installed_registry(monkeypatch, tmp_path):
    _pose_as_asv(monkeypatch, tmp_path, "discover")
    mod = load_adapter()
    assert mod.fundamentals__manual_matmul.params == [s.name for s in REGISTRY.get(MATMUL).implementations()]
    assert not hasattr(mod, "fundamentals__added_later")


def test_asv_discovery_imports_benches_without_pytest():
    """asv imports every module of benches/ (conftest.py, test_tasks.py too) where pytest is absent."""
    pytest.importorskip("asv_runner", reason="asv_runner (pip install 'torchdrills[dev]') is not installed")
    script = textwrap.dedent(f"""
        import json, sys

        class NoPytest:  # as in asv's environment, which has the project's dependencies only
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pytest", "_pytest", "pytest_benchmark"):
                    raise ImportError("no pytest here")

        sys.meta_path.insert(0, NoPytest())
        from asv_runner._aux import update_sys_path
        from asv_runner.discovery import disc_benchmarks

        root = {str(REPO / "benches")!r}
        update_sys_path(root)
        names = [b.name for b in disc_benchmarks(root)]
        print(json.dumps({{"names": names, "modules": sorted(m for m in sys.modules if m.startswith("benches"))}}))
    """)
    res = subprocess.run([sys.executable, "-c", script], cwd="/", capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert f"asv_benchmarks.{'fundamentals__manual_matmul'}.time_run" in out["names"]
    assert all(n.startswith("asv_benchmarks.") for n in out["names"])
    # the area folders have no __init__.py: task files are not imported as benches.* modules
    assert set(out["modules"]) == {"benches", "benches.asv_benchmarks", "benches.conftest", "benches.test_tasks"}


@pytest.mark.slow
def test_asv_run_quick_in_a_clone(tmp_path):
    """`asv run --quick` of HEAD in a fresh clone: builds, installs, times manual_matmul."""
    for mod in ("asv", "virtualenv"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed (pip install 'torchdrills[dev]')")
    asv = Path(sys.executable).with_name("asv")
    if not asv.exists():
        pytest.skip(f"no asv script beside {sys.executable}")
    if shutil.which("git") is None:
        pytest.skip("git is not on PATH")
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    env = dict(
        os.environ,
        HOME=str(tmp_path / "home"),
        DRILLS_ASV_VERBOSE="1",
        PATH=f"{asv.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("PYTHONPATH", None)

    def asv_cmd(*args: str, timeout: float) -> str:
        res = subprocess.run([str(asv), *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout)
        assert res.returncode == 0, f"asv {' '.join(args)} failed:\n{res.stdout[-5000:]}\n{res.stderr[-3000:]}"
        return res.stdout + res.stderr

    asv_cmd("machine", "--yes", "--machine", "drills-test", timeout=60)
    out = asv_cmd(
        "run", "--quick", "--show-stderr", "--machine", "drills-test", "--bench", "manual_matmul", "HEAD^!", timeout=840
    )  # under pytest-timeout's 900 s
    assert "failed" not in out.lower(), out[-5000:]
    # timed: the harness installed in asv's environment, the adapter of the working tree
    assert "/site-packages/harness/__init__.py" in out and f"adapter={clone}/benches/asv_benchmarks.py" in out

    results = [p for p in (clone / "results" / "asv" / "drills-test").glob("*.json") if p.name != "machine.json"]
    assert len(results) == 1, results
    data = json.loads(results[0].read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    assert data["commit_hash"] == head
    impls = [s.name for s in REGISTRY.get(MATMUL).implementations()]
    for bench in ("time_run", "peakmem_run", "track_gflops", "track_gbps"):
        values = data["result_columns"] and dict(
            zip(data["result_columns"], data["results"][f"asv_benchmarks.fundamentals__manual_matmul.{bench}"])
        )
        assert len(values["result"]) == len(impls) and all(v is not None and v > 0 for v in values["result"]), values
    assert (clone / "results" / "asv" / "benchmarks.json").is_file()
