"""A failed extension build is a skipped part: the task's Triton and torch parts still run and pass."""

import sys
import types

import pytest
import torch

from harness import REGISTRY
from harness.checks import CheckFailed
from harness.gpu_check import worst_elements
from harness.runner import run_task
from harness.testing import run_check


def _broken(*a, **kw):
    raise RuntimeError("Error building extension 'torchdrills_cpp_x'\nbindings.cpp:1: error: planted build failure")


@pytest.fixture
def broken_cpp(monkeypatch):
    from kernels import cpp

    monkeypatch.setattr(cpp, "load", _broken)


def _small(task_id, tiny):
    base = REGISTRY.get(task_id)
    return type("Small", (base,), {"sizes": {"tiny": tiny, "cpu": tiny}, "compile_report": lambda self, ctx: None})


def test_fused_ln_dropout_goes_on_without_its_extension(broken_cpp):
    mod = sys.modules[REGISTRY.get("m3.fused_ln_dropout").__module__]
    task = _small("m3.fused_ln_dropout", [mod.LNConfig(7, 33, 0.1)])
    rec = run_check(task)
    assert {"eager_same_mask", "triton_fused", "eager: drop rate p"} <= set(rec.checks)
    assert not any(name.startswith("cpp_fused") for name in rec.checks)
    (part,) = [p for p in rec.skipped_parts if p["part"] == "implementation cpp_fused"]
    assert "planted build failure" in part["reason"] and "extension not built" in part["reason"]
    entry = run_task(task, mode="bench", size="tiny", min_run_time_s=0.01)
    assert entry["status"] == "pass", entry.get("reason")
    assert {m["impl"] for m in entry["measurements"]} == {"eager", "eager_same_mask"}


def test_reduction_kernel_goes_on_without_its_extension(broken_cpp):
    mod = sys.modules[REGISTRY.get("m3.reduction_kernel").__module__]
    task = _small("m3.reduction_kernel", [mod.SumConfig((7,)), mod.SumConfig((33, 1000), -1)])
    rec = run_check(task)
    assert any(n.startswith("triton_sum") for n in rec.checks) and any(n.startswith("torch_sum") for n in rec.checks)
    assert any(p["part"] == "implementation cpp_sum" and "planted" in p["reason"] for p in rec.skipped_parts)


def test_native_comparison_skips_rows_not_runnable_here(broken_cpp):
    task = REGISTRY.get("m3.native_comparison")
    rec = run_check(task)  # the C++ rows are skipped with the reason; Triton rows checked in the interpreter
    assert "Triton sum == native" in rec.checks and "C++ ext sum == native" not in rec.checks
    mod = sys.modules[task.__module__]
    cuda_run = types.SimpleNamespace(is_cuda=True, device=torch.device("cuda"))
    assert "CPU row in a CUDA run" in task().not_runnable(cuda_run, mod.KERNELS[0])
    cpu_run = types.SimpleNamespace(is_cuda=False, device=torch.device("cpu"))
    assert "planted build failure" in task().not_runnable(cpu_run, mod.KERNELS[1])


def test_worst_elements_keeps_the_deciding_elements():
    from harness.context import Context, TaskRecord

    expected = torch.linspace(-1, 1, 100_000)
    actual = expected.clone()
    actual[77_777] += 0.5  # one bad element among 100k
    ctx = Context(REGISTRY.get("m4.triton_matmul"), mode="check", record=TaskRecord(id="t"))
    a, e = worst_elements(actual, expected, rtol=1e-5, atol=1e-5, k=64, min_numel=1000)
    assert a.numel() <= 2 * 64 + 1
    with pytest.raises(CheckFailed):
        ctx.assert_close(a, e, rtol=1e-5, atol=1e-5, name="sampled")
    actual[77_777] = expected[77_777] + 3e-6
    c = ctx.assert_close(*worst_elements(actual, expected, rtol=1e-5, atol=1e-5, min_numel=1000), name="ok")
    assert c.max_abs_err == pytest.approx(3e-6, rel=0.01)  # the true max error is recorded
