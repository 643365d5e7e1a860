"""Extension builds: a lock whose builder died is cleared at once; a failed build is raised once, clearly."""

import json
import socket
import subprocess
import sys

import pytest
import torch

from kernels.cpp import common


@pytest.fixture
def ext_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(common, "_FAILED", {})
    return tmp_path


def _plant_lock(name: str, pid: int | None, host: str | None = None):
    d = common.build_root() / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "lock").write_text("")
    if pid is not None:
        (d / common.OWNER_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))
    return d / "lock"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_lock_of_a_dead_builder_is_cleared_at_once(ext_root):
    lock = _plant_lock("x", _dead_pid())
    with pytest.warns(UserWarning, match="has exited"):
        common.build_dir("x")  # the lock is seconds old: no age rule could have removed it
    assert not lock.exists()


def test_lock_of_a_live_builder_is_kept_until_it_dies(ext_root):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _plant_lock("x", p.pid)
        common.build_dir("x")
        assert lock.exists()
        other_host = _plant_lock("y", _dead_pid(), host="another-host")  # cannot judge a pid elsewhere
        common.build_dir("y")
        assert other_host.exists()
        no_owner = _plant_lock("z", None)  # fresh, unknown builder: kept (age rule)
        common.build_dir("z")
        assert no_owner.exists()
    finally:
        p.kill()
        p.wait()
    with pytest.warns(UserWarning, match="stale extension build lock"):
        common.build_dir("x")
    assert not lock.exists()


def test_build_once_writes_the_owner_and_remembers_a_failure(ext_root):
    calls = []

    def build():
        owner = json.loads((common.build_root() / "e" / common.OWNER_FILE).read_text())
        calls.append(owner)
        raise RuntimeError("Error building extension 'e':\n[1/3] c++ ...\nbindings.cpp:3:1: error: expected ';'\n")

    with pytest.raises(common.ExtensionBuildError, match="e failed to build: RuntimeError.*error: expected ';'"):
        common.build_once("e", build)
    assert calls == [{"pid": calls[0]["pid"], "host": socket.gethostname(), "started": calls[0]["started"]}]
    with pytest.raises(common.ExtensionBuildError):
        common.build_once("e", build)
    assert len(calls) == 1  # not built twice
    assert common.build_once("ok", lambda: "module") == "module"


def test_cuda_load_failure_becomes_a_one_line_reason(ext_root, monkeypatch):
    """A fake CUDA machine whose extension build fails: load raises, build_error names why."""
    import torch.utils.cpp_extension as cpp_extension

    from kernels import cuda

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(cuda, "find_nvcc", lambda: "/usr/bin/nvcc")
    n = []

    def failing_load(**kw):
        n.append(kw["name"])
        raise RuntimeError("Error building extension 'torchdrills_cuda_sm_90'\nlaunch.h:9: error: planted")

    monkeypatch.setattr(cpp_extension, "load", failing_load)
    cuda.load.cache_clear()
    try:
        why = cuda.build_error()
        assert why is not None and "torchdrills_cuda_sm_90 failed to build" in why and "planted" in why
        assert "\n" not in why
        assert cuda.build_error() == why and n == ["torchdrills_cuda_sm_90"]
    finally:
        cuda.load.cache_clear()
