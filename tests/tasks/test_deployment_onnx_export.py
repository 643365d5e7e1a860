"""deployment.onnx_export: ORT = eager at unseen shapes; 0/1 specialisation refused (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.testing import run_check

Task = REGISTRY.get("deployment.onnx_export")
pytestmark = pytest.mark.skipif(bool(capabilities.missing(["onnxruntime"])), reason="needs onnxruntime")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["ORT = eager"]["n"] == 4  # the example shape and three unseen ones
    assert rec.metrics["export_s"] > 0


def test_an_example_of_size_one_in_a_dynamic_dim_is_refused(tmp_path):
    from kernels.export.onnx_rt import export_onnx

    with pytest.raises(ValueError, match="specialises sizes 0 and 1"):
        export_onnx(torch.nn.Linear(4, 2), torch.randn(1, 4), tmp_path / "m.onnx", dynamic_dims={0: "batch"})


def test_a_refused_input_names_the_declared_shape(tmp_path):
    from kernels.export.onnx_rt import export_onnx, run, session

    m = torch.nn.Linear(4, 2).eval()
    export_onnx(m, torch.randn(3, 4), tmp_path / "m.onnx", dynamic_dims=None)
    sess = session(tmp_path / "m.onnx", 1)
    torch.testing.assert_close(run(sess, torch.ones(3, 4)), m(torch.ones(3, 4)).detach())
    with pytest.raises(ValueError, match=r"refused input \(5, 4\).*\[3, 4\]"):
        run(sess, torch.ones(5, 4))
