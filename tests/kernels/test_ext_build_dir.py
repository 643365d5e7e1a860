"""Extension build folders: one per environment, and a stale build lock does not hang loads."""

import os
import time

import pytest

from kernels.cpp import common


def test_build_root_is_per_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    a = common.build_root()
    assert a.parent == tmp_path and a.is_dir()
    monkeypatch.setattr(common.sys, "prefix", "/some/other/venv")
    assert common.build_root() != a


def test_stale_lock_is_removed_fresh_lock_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    d = common.build_dir("x")
    lock = d / "lock"
    lock.write_text("")
    common.build_dir("x")
    assert lock.exists()  # a build may be running right now
    old = time.time() - common.STALE_LOCK_S - 60
    os.utime(lock, (old, old))
    with pytest.warns(UserWarning, match="stale extension build lock"):
        common.build_dir("x")
    assert not lock.exists()
