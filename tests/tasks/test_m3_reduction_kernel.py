"""m3.reduction_kernel: every sum equals torch.sum on odd sizes; planted reduction bugs are caught.

The nvcc compile runs once, in test_check_passes; planted-bug tests skip it.
"""

import shutil
import sys

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("m3.reduction_kernel")
mod = sys.modules[Task.__module__]


class NoCompile(Task):
    def compile_report(self, ctx):
        pass


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"cpp_sum (exact values)", "triton_sum (exact values)", "cpp_sum (normal values)"} <= set(rec.checks)
    if shutil.which("nvcc"):
        assert rec.checks["reduction.cu compiles for sm_90"]["passed"]
        table = next(t for t in rec.tables if t["name"].startswith("ptxas resources, reduction.cu"))
        assert any("sum_partials_kernel" in r["kernel"] for r in table["rows"])


def test_reduction_that_drops_the_tail_is_caught():
    def drops_tail(self, x, dim):
        # a block loop that forgets the last partial block: loses up to 255 trailing elements
        def run():
            if dim is None:
                flat = x.reshape(-1)
                return flat[: max(1, flat.numel() // 256 * 256)].sum()
            return x.sum(dim)

        return run

    expect_check_fails(planted(NoCompile, "cpp_sum", drops_tail), match="cpp_sum")


def test_reduction_that_drops_only_the_last_element_is_caught():
    def drops_last(self, x, dim):
        return lambda: (x.reshape(-1)[:-1].sum() if x.numel() > 1 else x.sum()) if dim is None else x.sum(dim)

    expect_check_fails(planted(NoCompile, "triton_sum", drops_last), match="triton_sum")


def test_half_precision_accumulator_is_caught():
    def fp16_acc(self, x, dim):
        return lambda: (x.half().sum() if dim is None else x.half().sum(dim)).to(x.dtype)

    expect_check_fails(planted(NoCompile, "cpp_sum", fp16_acc), match="cpp_sum")


def test_wrong_result_dtype_is_caught():
    def as_double(self, x, dim):
        return lambda: x.double().sum() if dim is None else x.double().sum(dim)

    expect_check_fails(planted(NoCompile, "cpp_sum", as_double), match="torch.float64, expected () torch.float32")


def test_last_dim_sum_over_the_wrong_axis_is_caught():
    def wrong_axis(self, x, dim):
        return lambda: x.sum() if dim is None else x.sum(0)[: x.shape[0]]

    expect_check_fails(planted(NoCompile, "cpp_sum", wrong_axis), match="cpp_sum")


def test_exact_inputs_have_exact_float32_sums():
    x = mod.make_input(mod.SumConfig((2**20 + 3,)), "cpu", torch.float32, 0, exact=True)
    assert x.double().sum().item() == x.sum().item() == x.flip(0).sum().item()
