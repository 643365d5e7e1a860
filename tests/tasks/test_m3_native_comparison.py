"""m3.native_comparison: the table covers every custom kernel and each equals its native op; planted gaps are caught."""

import dataclasses
import sys

import torch

from harness import REGISTRY
from harness.context import Context
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m3.native_comparison")
mod = sys.modules[Task.__module__]


def test_check_passes_and_lists_every_kernel():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["the table covers every custom kernel"]["n"] >= 8
    if not torch.cuda.is_available():
        # Triton kernels are still checked for equality, in the interpreter
        assert {"Triton matmul == native", "Triton softmax == native", "C++ ext sum == native"} <= set(rec.checks)


def test_table_missing_a_kernel_is_caught():
    class Missing(Task):
        def kernels(self):
            return tuple(k for k in mod.KERNELS if k.name != "CUDA sum")

    expect_check_fails(Missing, match="kernels.cuda exports a sum kernel that the table lacks")


def test_custom_kernel_differing_from_native_is_caught():
    class Wrong(Task):
        def work(self, k, s, device, dtype, seed):
            w = super().work(k, s, device, dtype, seed)
            if k.name == "Triton softmax":
                inner = w.custom
                w = dataclasses.replace(w, custom=lambda: inner() * 1.001)
            return w

    expect_check_fails(Wrong, match="Triton softmax == native")


def test_ln_dropout_with_another_mask_is_caught():
    class Wrong(Task):
        def work(self, k, s, device, dtype, seed):
            w = super().work(k, s, device, dtype, seed)
            if k.name == "C++ ext LayerNorm+Dropout":
                w = dataclasses.replace(w, custom=w.native)  # torch's own dropout mask
            return w

    expect_check_fails(Wrong, match="C++ ext LayerNorm+Dropout == native")


def test_row_without_a_reason_is_caught():
    class Silent(Task):
        def build_rows(self, ctx, s, *, time_it, seed=None):
            rows = super().build_rows(ctx, s, time_it=time_it, seed=seed)
            for r in rows:
                if r["status"] and r["status"].startswith("needs"):
                    r["status"] = ""
            if not any(r["status"] == "" for r in rows):  # on a GPU machine every row runs: blank one
                rows[-1].update(status="", equal_to_native=None)
            return rows

    expect_check_fails(Silent, match="neither checked nor skipped")


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
