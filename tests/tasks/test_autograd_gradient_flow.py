"""2.08 gradient_flow: hook norms equal .grad norms; hooks filed under the wrong layer are caught."""

import pytest
import torch

from harness import REGISTRY
from harness.context import Context
from harness.testing import expect_check_fails, run_check
from kernels.autograd.grad_flow import GradFlowRecorder

Task = REGISTRY.get("autograd.gradient_flow")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert set(rec.checks) == {
        "recorded layers are the weights in order",
        "every layer recorded once per step",
        "hook norms = norms of .grad",
        "layers' norms are distinct",
        "remove() unhooks",
    }
    assert all(c["passed"] for c in rec.checks.values())


class LateBindingRecorder(GradFlowRecorder):
    """The classic closure bug: a lambda in the loop sees the loop's last name, so every layer's
    norm lands under the last layer (and overwrites it)."""

    def __init__(self, named_parameters):
        self.names, self._pending, self._steps, self._handles = [], {}, [], []
        for name, p in named_parameters:
            self.names.append(name)
            self._handles.append(
                p.register_hook(lambda g: self._pending.__setitem__(name, torch.linalg.vector_norm(g)))
            )


class ShiftedRecorder(GradFlowRecorder):
    """Hooks registered on the right tensors, filed one layer off (enumerate off by one)."""

    def __init__(self, named_parameters):
        named = list(named_parameters)
        names = [n for n, _ in named]
        super().__init__(named)
        self.remove()
        self._handles = [p.register_hook(self._hook_for(names[(i + 1) % len(names)])) for i, (_, p) in enumerate(named)]


def _with(recorder_factory):
    class Wrong(Task):
        def make_recorder(self, model):
            return recorder_factory(model)

    return Wrong


def test_late_binding_hooks_are_caught():
    err = expect_check_fails(_with(lambda m: LateBindingRecorder(mod._weights(m))), match="recorded layers")
    assert "['net.8.weight']" in str(err)  # everything filed under the last layer


def test_hooks_filed_under_the_wrong_layer_are_caught():
    expect_check_fails(_with(lambda m: ShiftedRecorder(mod._weights(m))), match="hook norms = norms of .grad")


def test_bias_instead_of_weight_is_caught():
    def biases(m):
        named = [(n, p) for n, p in m.named_parameters() if n.endswith("bias")]
        rec = GradFlowRecorder(named)
        rec.names = [n.replace("bias", "weight") for n in rec.names]
        rec.remove()
        rec._handles = [p.register_hook(rec._hook_for(n.replace("bias", "weight"))) for n, p in named]
        return rec

    expect_check_fails(_with(biases), match="hook norms = norms of .grad")


def test_recorder_rejects_frozen_parameters_and_shared_use():
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    with pytest.raises(ValueError, match="does not require grad"):
        GradFlowRecorder([("w", frozen)])
    w = torch.nn.Parameter(torch.ones(3))
    rec = GradFlowRecorder([("w", w)])
    ((w * 2).sum() + (w * 3).sum()).backward()  # one leaf, one accumulated gradient: one hook call
    rec.end_step()
    assert rec.history() == {"w": [pytest.approx(5 * 3**0.5)]}


def test_bench_tiny_writes_curves_per_layer():
    ctx = Context(Task, mode="bench", size="tiny", min_run_time_s=0.01)
    Task().bench(ctx)
    names = {c["name"] for c in ctx.record.curves}
    assert names == {
        "grad norm per layer (sigmoid)",
        "grad norm per layer (relu)",
        "grad norm per layer (relu_he)",
        "mean grad norm by depth",
    }
    per_layer = [c for c in ctx.record.curves if c["name"] == "grad norm per layer (sigmoid)"]
    assert len(per_layer) == 5 and all(len(c["y"]) == 5 for c in per_layer)
    assert {m["impl"] for m in ctx.record.measurements} == {"no_hooks", "hooks", "hooks_sync"}
