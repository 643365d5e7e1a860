"""m4.cuda_graphs: the capture/replay wrapper's host-side logic; planted wrapper bugs are caught."""

import sys

import pytest
import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m4.cuda_graphs")
mod = sys.modules[Task.__module__]
GraphedCallable = mod.GraphedCallable


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["graph replay == eager"]["n"] == 6
    if not torch.cuda.is_available():
        assert rec.skipped_parts[0]["reason"] == "needs cuda"


def _planted(wrapper_cls):
    class Wrong(Task):
        def graphed(self, model, sample, emulate=None):
            return wrapper_cls(model, sample, emulate=emulate)

    return Wrong


def test_wrapper_that_forgets_to_copy_inputs_is_caught():
    class NoCopy(GraphedCallable):
        def __call__(self, *inputs):
            self.check_inputs(inputs)
            self.replay()  # replays on the capture's input
            return self.static_outputs

    expect_check_fails(_planted(NoCopy), match="graph replay == eager")


def test_wrapper_without_shape_check_is_caught():
    class NoShapeCheck(GraphedCallable):
        def check_inputs(self, inputs):
            if len(inputs) != len(self.static_inputs):
                raise TypeError(f"the graph was captured with {len(self.static_inputs)} input(s)")
            if not all(isinstance(x, torch.Tensor) for x in inputs):
                raise TypeError("tensors only")

        def __call__(self, *inputs):
            self.check_inputs(inputs)
            for s, x in zip(self.static_inputs, inputs):
                s.copy_(x[: s.shape[0]].to(s.dtype))  # silently truncates a bigger batch
            self.replay()
            return self.static_outputs

    expect_check_fails(_planted(NoShapeCheck), match="shape mismatch raises")


def test_wrapper_returning_fresh_tensors_is_caught():
    class Fresh(GraphedCallable):
        def __call__(self, *inputs):
            return super().__call__(*inputs).clone()

    expect_check_fails(_planted(Fresh), match="same static output tensor")


def test_wrapper_that_writes_into_the_callers_tensor_is_caught():
    class Aliasing(GraphedCallable):
        def __call__(self, *inputs):
            out = super().__call__(*inputs)
            inputs[0].copy_(out) if out.shape == inputs[0].shape else None
            return out

    expect_check_fails(_planted(Aliasing), match="modified its input")


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
