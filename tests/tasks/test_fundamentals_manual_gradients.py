"""1.05 manual_gradients: the check passes and catches planted bugs."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check

Task = REGISTRY.get("fundamentals.manual_gradients")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert {"autograd", "manual", "function", "manual float64", "gradcheck float64"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_missing_tanh_derivative_is_caught():
    def no_tanh_prime(self, x, w, b, y):
        def run():
            h = torch.tanh(x @ w + b)
            r = h - y
            dz = r / r.numel()  # forgot * (1 - h**2)
            return 0.5 * r.pow(2).mean(), dz @ w.T, x.T @ dz, dz.sum(0)

        return run

    expect_check_fails(planted(Task, "manual", no_tanh_prime), match="manual")


def test_bias_gradient_averaged_is_caught():
    def mean_bias(self, x, w, b, y):
        def run():
            loss, gx, gw, gb = mod.grads_by_hand(x, w, b, y)
            return loss, gx, gw, gb / x.shape[0]  # mean over the batch instead of the sum

        return run

    expect_check_fails(planted(Task, "manual", mean_bias), match="manual")


class _WrongBackward(mod.TanhMSE):
    @staticmethod
    def backward(ctx, grad_loss):
        gx, gw, gb, gy = mod.TanhMSE.backward(ctx, grad_loss)
        return gx, gw * 1.01, gb, gy  # 1% off: a float64 gradcheck sees it


def test_wrong_function_backward_is_caught_by_gradcheck():
    # the timed `function` implementation is fine; only the Function under gradcheck is wrong
    class WrongFunction(Task):
        function_cls = _WrongBackward

    Wrong = planted(WrongFunction, "function", lambda self, *inputs: Task().autograd(*inputs))
    expect_check_fails(Wrong, match="gradcheck")


def test_wrong_function_backward_is_caught_by_comparison():
    class WrongFunction(Task):
        function_cls = _WrongBackward

    expect_check_fails(WrongFunction, match="function")
