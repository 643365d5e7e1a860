"""kernels.export.compile: a compiler that fails to build is a skipped part, anything else an error;
TorchScript round trips; kernels.export.trt's wrong coverage and op table."""

from __future__ import annotations

import collections

import pytest
import torch

from harness import Prepared, System
from harness.context import Context
from kernels.export.compile import jit_round_trip, quiet_jit, time_or_skip
from kernels.export.trt import TRT_CONVERTERS, namespace_coverage, op_table


class _Fails(System):
    id = "tests.fails"
    variants = ("eager", "compiled")
    sizes = {"tiny": [None]}

    def prepare(self, ctx, impl, config):
        if impl == "compiled":
            raise RuntimeError("no C++ compiler found\nsecond line")
        return Prepared(fn=lambda: None)


def test_a_failing_compiler_is_a_skipped_part_and_a_failing_eager_an_error():
    ctx = Context(_Fails, mode="bench", min_run_time_s=0.01)
    time_or_skip(ctx, _Fails(), "compiled", None, may_fail=True)
    assert ctx.record.skipped_parts == [{"part": "timing of compiled", "reason": "RuntimeError: no C++ compiler found"}]
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        time_or_skip(ctx, _Fails(), "compiled", None, may_fail=False)


def test_jit_round_trip_reloads_an_equal_module(tmp_path):
    m = quiet_jit(torch.jit.script, torch.nn.Linear(3, 2).eval())
    (w1, a), (w2, b) = jit_round_trip(m, tmp_path / "m.pt")
    assert (w1, w2) == ("before save", "reloaded") and (tmp_path / "m.pt").exists()
    x = torch.randn(4, 3)
    torch.testing.assert_close(b(x), a(x))


def test_namespace_coverage_is_wrong_and_the_op_table_marks_converters():
    ops = collections.Counter({"aten.bucketize.Tensor": 1, "aten.relu.default": 2, "getitem": 1})
    assert namespace_coverage(ops, TRT_CONVERTERS)["fraction"] == 1.0  # the bug: bucketize "converts"
    assert op_table(ops) == [
        {"op": "aten.bucketize.Tensor", "count": 1, "TensorRT converter": False},
        {"op": "aten.relu.default", "count": 2, "TensorRT converter": True},
    ]
