"""deployment.torchscript: script/trace round trips, the frozen branch, torch.export (mutants: test_mutants.py)."""

import warnings

import torch

from harness import REGISTRY
from harness.testing import run_check
from models.deploy import CondGatedMLP, GatedMLP

Task = REGISTRY.get("deployment.torchscript")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["scripted = eager"]["n"] == 4  # 2 inputs x (before save, reloaded)
    assert "trace is wrong on the other branch (the lesson)" in rec.checks


def test_the_tracer_warns_about_the_branch_it_freezes():
    m = GatedMLP(4).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.trace(m, torch.ones(2, 4))
    assert any(issubclass(w.category, torch.jit.TracerWarning) for w in caught)


def test_cond_model_equals_the_if_model_on_both_branches():
    a, b = GatedMLP(4).eval(), CondGatedMLP(4).eval()
    b.load_state_dict(a.state_dict())
    for x in (torch.ones(3, 4), -torch.ones(3, 4)):
        torch.testing.assert_close(b(x), a(x))
