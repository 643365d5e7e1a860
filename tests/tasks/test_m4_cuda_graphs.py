"""m4.cuda_graphs: the capture/replay wrapper's host-side logic; its mutants: test_mutants.py."""

import pytest
import torch

from harness import REGISTRY
from harness.cuda_graph import GraphedCallable
from harness.testing import run_check

Task = REGISTRY.get("m4.cuda_graphs")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["graph replay == eager"]["n"] == 6
    if not torch.cuda.is_available():
        assert rec.skipped_parts[0]["reason"] == "needs cuda"


def test_emulated_wrapper_rules():
    lin = torch.nn.Linear(4, 3)
    g = GraphedCallable(lambda x, y: (lin(x) + y, x.sum()), torch.randn(2, 4), torch.randn(2, 3))
    a, b = torch.randn(2, 4), torch.randn(2, 3)
    out = g(a, b)
    assert isinstance(out, tuple) and out is g.static_outputs
    torch.testing.assert_close(out[0], lin(a).detach() + b)
    assert torch.equal(g.static_inputs[0], a) and g.static_inputs[0] is not a
    with pytest.raises(ValueError, match=r"shape \(3, 4\).*captured for \(2, 4\)"):
        g(torch.randn(3, 4), b)
    with pytest.raises(TypeError, match="captured with 2"):
        g(a)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        GraphedCallable(lin, torch.randn(2, 4), emulate=False)
    with pytest.raises(TypeError, match="not a tensor"):
        GraphedCallable(lin, [1.0, 2.0])
    with pytest.raises(TypeError, match="tuple/list of tensors"):
        GraphedCallable(lambda x: {"y": x}, torch.randn(2))
