"""2.02 linreg_backprop: the check passes and catches wrong hand gradients and unconverged training."""

import dataclasses

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.autograd.linreg import linreg_loss_and_grads

Task = REGISTRY.get("autograd.linreg_backprop")


def test_check_passes():
    rec = run_check(Task)
    compared = {"hand gradients = autograd", "manual trajectory = autograd trajectory", "converged to least squares"}
    assert set(rec.checks) == {f"{n} ({dt})" for n in compared for dt in ("float32", "float64")} | {
        "loss falls",
        "recovers the known weights",
        "bad shapes rejected",
    }
    assert all(c["passed"] for c in rec.checks.values())
    assert 0 < rec.metrics["recovery_max_abs_err_float32"] < 5e-3
    assert any("synthetic" in n for n in rec.notes)


class MissingFactorTwo(Task):
    """d/dr r^2 = 2r; forgetting the 2 halves the gradient (a silent lr / 2)."""

    def hand_grads(self, x, y, w, b):
        loss, dw, db = linreg_loss_and_grads(x, y, w, b)
        return loss, dw / 2, db / 2


class SumNotMean(Task):
    """Gradient of the summed loss: N times too large, and the descent diverges."""

    def hand_grads(self, x, y, w, b):
        loss, dw, db = linreg_loss_and_grads(x, y, w, b)
        return loss, dw * x.shape[0], db * x.shape[0]


def test_missing_factor_two_is_caught():
    expect_check_fails(MissingFactorTwo, match="hand gradients = autograd")


def test_sum_instead_of_mean_is_caught():
    expect_check_fails(SumNotMean, match="hand gradients = autograd")


class TooFewSteps(Task):
    sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], steps=8)}


def test_unconverged_training_is_caught():
    expect_check_fails(TooFewSteps, match="least squares")


class NoisyData(Task):
    """Training converges, but noise 0.5 leaves the least-squares weights ~0.02 off: recovery must fail."""

    sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], noise_std=0.5)}


def test_recovery_bound_can_fail():
    expect_check_fails(NoisyData, match="known weights not recovered")
