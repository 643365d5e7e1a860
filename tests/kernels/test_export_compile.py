"""kernels.export.compile: a compiler that fails to build raises NotImplementedError (a skipped part
under harness.task.measure_or_skip); TorchScript round trips; kernels.export.trt's wrong coverage and
op table."""

from __future__ import annotations

import collections

import pytest
import torch

from kernels.export.compile import compile_or_skip, export_round_trip, jit_round_trip, quiet_jit
from kernels.export.graph import core_aten
from kernels.export.trt import TRT_CONVERTERS, namespace_coverage, op_table


def test_a_failing_build_is_not_implemented_with_its_first_line(monkeypatch, tmp_path):
    def no_compiler(model, **kw):
        raise RuntimeError("no C++ compiler found\nsecond line")

    monkeypatch.setattr(torch, "compile", no_compiler)
    with pytest.raises(NotImplementedError, match=r"^RuntimeError: no C\+\+ compiler found$"):
        compile_or_skip("compiled", torch.nn.Linear(3, 2), torch.randn(2, 3), tmp_path)
    with pytest.raises(ValueError, match="unknown compiler"):
        compile_or_skip("tensorrt", torch.nn.Linear(3, 2), torch.randn(2, 3), tmp_path)


@pytest.mark.parametrize("message", ["", "  \n"])
def test_a_build_failing_with_an_empty_message_is_skipped_by_its_type(monkeypatch, tmp_path, message):
    def bare_assert(model, **kw):  # inductor may raise a bare AssertionError
        raise AssertionError(message)

    monkeypatch.setattr(torch, "compile", bare_assert)
    with pytest.raises(NotImplementedError, match=r"^AssertionError$"):
        compile_or_skip("compiled", torch.nn.Linear(3, 2), torch.randn(2, 3), tmp_path)


def test_jit_round_trip_reloads_an_equal_module(tmp_path):
    m = quiet_jit(torch.jit.script, torch.nn.Linear(3, 2).eval())
    (w1, a), (w2, b) = jit_round_trip(m, tmp_path / "m.pt")
    assert (w1, w2) == ("before save", "reloaded") and (tmp_path / "m.pt").exists()
    x = torch.randn(4, 3)
    torch.testing.assert_close(b(x), a(x))


def test_export_round_trip_keeps_the_batch_dynamic(tmp_path):
    m = torch.nn.Linear(3, 2).eval()
    loaded = export_round_trip(m, torch.randn(4, 3), tmp_path / "m.pt2")
    assert (tmp_path / "m.pt2").exists()
    for b in (1, 4, 9):  # batches the export never saw
        x = torch.randn(b, 3)
        torch.testing.assert_close(loaded(x), m(x))


def test_core_aten_decomposes_linear_to_what_tensorrt_converts():
    ep, ops = core_aten(torch.nn.Linear(3, 2).eval(), torch.randn(2, 3))
    assert "aten.linear.default" not in ops and ops["aten.addmm.default"] == 1
    x = torch.randn(2, 3)
    torch.testing.assert_close(ep.module()(x), torch.nn.functional.linear(x, *ep.module().parameters()))


def test_namespace_coverage_is_wrong_and_the_op_table_marks_converters():
    ops = collections.Counter({"aten.bucketize.Tensor": 1, "aten.relu.default": 2, "getitem": 1})
    assert namespace_coverage(ops, TRT_CONVERTERS)["fraction"] == 1.0  # the bug: bucketize "converts"
    assert op_table(ops) == [
        {"op": "aten.bucketize.Tensor", "count": 1, "TensorRT converter": False},
        {"op": "aten.relu.default", "count": 2, "TensorRT converter": True},
    ]
