"""kernels.triton without triton installed: a clear ImportError naming the extra."""

from __future__ import annotations

import importlib
import os
import sys

import pytest

pytest.importorskip("triton")


def test_missing_triton_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "kernels.triton" or m.startswith("kernels.triton.")]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install torchdrills\[triton\]"):
        importlib.import_module("kernels.triton")


def test_exports():
    kt = importlib.import_module("kernels.triton")
    for name in kt.__all__:
        assert callable(getattr(kt, name)) or name in ("INTERPRETER", "MATMUL_CONFIGS"), name
    # tests/conftest.py sets TRITON_INTERPRET=1 where no CUDA device is present
    assert kt.INTERPRETER == (os.environ.get("TRITON_INTERPRET") == "1")
