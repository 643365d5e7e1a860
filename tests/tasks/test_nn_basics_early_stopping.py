"""3.06 early_stopping: right stop epoch, bitwise restore; planted bugs are caught."""

import torch

from harness import REGISTRY
from harness.early_stopping import EarlyStopping
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("nn_basics.early_stopping")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["stop epoch"]["n"] == 6 and rec.curves


class OffByOne(EarlyStopping):
    """Stops after patience + 1 bad epochs (bad_epochs > patience)."""

    def step(self, value, model=None):
        super().step(value, model)
        return self.bad_epochs > self.patience


class NoRestore(EarlyStopping):
    def restore(self, model):
        if self.best_state is None:
            raise RuntimeError("no snapshot")


class SnapshotWithoutClone(EarlyStopping):
    """Keeps state_dict() itself: its tensors are the live weights, so 'restore' is a no-op."""

    def step(self, value, model=None):
        stop = super().step(value, None)
        if model is not None and self.best_epoch == self.epoch - 1:
            self.best_state = model.state_dict()
        return stop


class ParametersOnly(EarlyStopping):
    """Snapshots the parameters but not the buffers (BatchNorm running statistics)."""

    def step(self, value, model=None):
        stop = super().step(value, None)
        if model is not None and self.best_epoch == self.epoch - 1:
            self.best_state = {k: v.detach().clone() for k, v in model.named_parameters()}
        return stop

    def restore(self, model):
        model.load_state_dict(self.best_state, strict=False)


class MinDeltaIgnored(EarlyStopping):
    def is_improvement(self, value):
        d, self.min_delta = self.min_delta, 0.0
        try:
            return super().is_improvement(value)
        finally:
            self.min_delta = d


class EqualImproves(EarlyStopping):
    """Counts a value equal to the best as an improvement (<= instead of <)."""

    def is_improvement(self, value):
        return super().is_improvement(value) or value == self.best


def _with(cls):
    return type("T", (Task,), {"stopper": lambda self, *a: cls(*a)})


def test_off_by_one_stop_is_caught():
    expect_check_fails(_with(OffByOne), match="stopped at epoch")


def test_not_restoring_is_caught():
    expect_check_fails(_with(NoRestore), match="restored tensor differs")


def test_snapshot_without_clone_is_caught():
    expect_check_fails(_with(SnapshotWithoutClone), match="restored tensor differs")


def test_buffers_not_restored_are_caught():
    expect_check_fails(_with(ParametersOnly), match="running_")


def test_ignored_min_delta_is_caught():
    expect_check_fails(_with(MinDeltaIgnored), match="min_delta 0.02")


def test_equal_counted_as_improvement_is_caught():
    expect_check_fails(_with(EqualImproves), match="equal is no improvement")


def test_restore_copies_values_not_the_snapshot_tensors():
    m = torch.nn.Linear(2, 2)
    es = EarlyStopping(1)
    es.step(1.0, m)
    with torch.no_grad():
        m.weight.add_(1)
    es.restore(m)
    assert torch.equal(m.weight, es.best_state["weight"]) and m.weight.data_ptr() != es.best_state["weight"].data_ptr()
