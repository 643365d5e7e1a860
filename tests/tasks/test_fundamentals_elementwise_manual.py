"""1.04 elementwise_manual: the check passes; the engines on a transposed broadcast (mutants: test_mutants.py)."""

import torch

import kernels.tensor.iterator as kf
from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("fundamentals.elementwise_manual")


def test_check_passes():
    rec = run_check(Task)
    assert {"torch_op", "loop", "strided", "special values: exp", "float64"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_engines_directly_on_a_transposed_broadcast():
    a = torch.randn(4, 3).t()  # (3, 4), strides (1, 3)
    b = torch.randn(4)
    for engine in (kf.elementwise_loop, kf.elementwise_strided):
        torch.testing.assert_close(engine("sub", a, b), a - b)
