"""m3.native_comparison: the table covers every custom kernel, each equal to its native op (mutants: test_mutants)."""

import sys

import torch

from harness import REGISTRY
from harness.context import Context
from harness.testing import run_check

Task = REGISTRY.get("m3.native_comparison")
mod = sys.modules[Task.__module__]


def test_check_passes_and_lists_every_kernel():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["the table covers every custom kernel"]["n"] >= 8
    if not torch.cuda.is_available():
        # Triton kernels are still checked for equality, in the interpreter
        assert {"Triton matmul == native", "Triton softmax == native", "C++ ext sum == native"} <= set(rec.checks)


def test_bench_table_has_one_row_per_kernel_with_the_same_columns():
    tiny = Task.sizes["tiny"]
    ctx = Context(Task, mode="bench", size="tiny", peak={"copy_gbps": 10.0, "matmul_gflops": 100.0})
    Task().bench(ctx)
    (table,) = ctx.record.tables
    assert [r["kernel"] for r in table["rows"]] == [k.name for k in mod.KERNELS]
    assert len({tuple(r) for r in table["rows"]}) == 1
    cpp_ln = table["rows"][0]
    assert cpp_ln["status"] == "measured" and cpp_ln["unit"] == "GB/s" and cpp_ln["custom_pct_peak"] > 0
    assert tiny.ln == (7, 33)
