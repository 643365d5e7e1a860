"""m3.reduction_kernel: every sum equals torch.sum on odd sizes (its mutants: test_mutants.py; they fail
before the nvcc compile at the end of the check)."""

import shutil
import sys

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m3.reduction_kernel")
mod = sys.modules[Task.__module__]


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"cpp_sum (exact values)", "triton_sum (exact values)", "cpp_sum (normal values)"} <= set(rec.checks)
    if shutil.which("nvcc"):
        assert rec.checks["reduction.cu compiles for sm_90"]["passed"]
        table = next(t for t in rec.tables if t["name"].startswith("ptxas resources, reduction.cu"))
        assert any("sum_partials_kernel" in r["kernel"] for r in table["rows"])


def test_exact_inputs_have_exact_float32_sums():
    x = mod.make_input(mod.SumConfig((2**20 + 3,)), "cpu", torch.float32, 0, exact=True)
    assert x.double().sum().item() == x.sum().item() == x.flip(0).sum().item()
