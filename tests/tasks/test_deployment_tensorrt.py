"""deployment.tensorrt: the export graph TensorRT would compile (mutants: test_mutants.py)."""

import collections

import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.export.graph import coverage, graph_ops, input_dtypes

Task = REGISTRY.get("deployment.tensorrt")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["trt_op_coverage"] == 1.0
    if not torch.cuda.is_available():  # the engine part is skipped with its capability named
        assert {"part": "TensorRT engine (torch_tensorrt) within 1e-3 of eager", "reason": "needs tensorrt"} in (
            rec.skipped_parts
        )


def test_coverage_counts_each_op_once_and_ignores_bookkeeping():
    ops = collections.Counter({"aten.relu.default": 3, "aten.foo.default": 1, "getitem": 2})
    cov = coverage(ops, ["aten.relu.default"])
    assert cov == {"covered": ["aten.relu.default"], "missing": ["aten.foo.default"], "fraction": 0.5}
    assert coverage([], [])["fraction"] == 1.0


def test_graph_ops_and_input_dtypes_of_a_linear_layer():
    ep = torch.export.export(torch.nn.Linear(3, 2), (torch.randn(2, 3, dtype=torch.float32),))
    assert graph_ops(ep) == {"aten.linear.default": 1}
    assert input_dtypes(ep) == [torch.float32]  # the weight and bias are parameters, not user inputs
