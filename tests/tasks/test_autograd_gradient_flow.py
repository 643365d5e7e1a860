"""2.08 gradient_flow: hook norms equal .grad norms; a heatmap per network (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY
from harness.context import Context
from harness.testing import run_check
from kernels.autograd.grad_flow import GradFlowRecorder

Task = REGISTRY.get("autograd.gradient_flow")


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


def test_recorder_rejects_frozen_parameters_and_shared_use():
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    with pytest.raises(ValueError, match="does not require grad"):
        GradFlowRecorder([("w", frozen)])
    w = torch.nn.Parameter(torch.ones(3))
    rec = GradFlowRecorder([("w", w)])
    ((w * 2).sum() + (w * 3).sum()).backward()  # one leaf, one accumulated gradient: one hook call
    rec.end_step()
    assert rec.history() == {"w": [pytest.approx(5 * 3**0.5)]}


def test_bench_tiny_writes_heatmaps_per_network():
    ctx = Context(Task, mode="bench", size="tiny", min_run_time_s=0.01)
    Task().bench(ctx)
    assert {c["name"] for c in ctx.record.curves} == {"mean grad norm by depth"}
    maps = {m["name"]: m for m in ctx.record.images}
    assert set(maps) == {f"gradient flow ({a})" for a in ("sigmoid", "relu", "relu_he")}
    z = maps["gradient flow (sigmoid)"]["z"]
    assert len(z) == 5 and all(len(row) == 5 for row in z)  # 5 layers x 5 steps
    assert {m["impl"] for m in ctx.record.measurements} == {"no_hooks", "hooks", "hooks_sync"}
