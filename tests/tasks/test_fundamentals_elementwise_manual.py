"""1.04 elementwise_manual: the check passes and catches planted bugs."""

import math

import torch

import kernels.tensor.iterator as kf
from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("fundamentals.elementwise_manual")


def test_check_passes():
    rec = run_check(Task)
    assert {"torch_op", "loop", "strided", "special values: exp", "float64"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_loop_ignoring_strides_is_caught():
    # reads every operand as if contiguous: right on plain inputs, wrong on permuted/sliced ones
    def contiguous_reader(self, op, *tensors):
        dense = [t.as_strided(t.shape, torch.empty(t.shape).stride()) for t in tensors]  # strides dropped
        return lambda: kf.elementwise_loop(op, *dense)

    expect_check_fails(planted(Task, "loop", contiguous_reader), match="loop")


def test_exp_without_range_reduction_is_caught(monkeypatch):
    # a plain Taylor series: fine near 0, far off for |x| of tens
    def taylor(x):
        return sum(x**n / math.factorial(n) for n in range(12))

    monkeypatch.setitem(kf.SCALAR_OPS, "exp", (1, lambda x: taylor(x) if math.isfinite(x) else math.exp(x)))
    expect_check_fails(Task, match="loop")


def test_maximum_dropping_nan_is_caught(monkeypatch):
    monkeypatch.setitem(kf.SCALAR_OPS, "maximum", (2, max))  # Python's max ignores NaN in the first slot
    expect_check_fails(Task, match="maximum")


def test_broadcast_stride_not_zero_is_caught():
    # a strided engine that forgets stride 0 for broadcast dims reads past the small operand
    def no_zero_stride(self, op, *tensors):
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        return lambda: kf.VECTOR_OPS[op](
            *[
                t.contiguous().reshape(-1).repeat(math.prod(shape) // max(t.numel(), 1) or 1)[: math.prod(shape)]
                for t in tensors
            ]
        ).view(shape)

    expect_check_fails(planted(Task, "strided", no_zero_stride), match="strided")


def test_engines_directly_on_a_transposed_broadcast():
    a = torch.randn(4, 3).t()  # (3, 4), strides (1, 3)
    b = torch.randn(4)
    for engine in (kf.elementwise_loop, kf.elementwise_strided):
        torch.testing.assert_close(engine("sub", a, b), a - b)
