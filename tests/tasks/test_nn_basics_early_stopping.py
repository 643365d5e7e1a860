"""3.06 early_stopping: right stop epoch, bitwise restore (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.early_stopping import EarlyStopping
from harness.testing import run_check

Task = REGISTRY.get("nn_basics.early_stopping")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["stop epoch"]["n"] == 6


def test_restore_copies_values_not_the_snapshot_tensors():
    m = torch.nn.Linear(2, 2)
    es = EarlyStopping(1)
    es.step(1.0, m)
    with torch.no_grad():
        m.weight.add_(1)
    es.restore(m)
    assert torch.equal(m.weight, es.best_state["weight"]) and m.weight.data_ptr() != es.best_state["weight"].data_ptr()
