"""m2.loss_scaling: the hand scaler behaves exactly like GradScaler; planted scaler bugs are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.amp.scaler import DynamicLossScaler

Task = REGISTRY.get("m2.loss_scaling")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["scale equals GradScaler's"]["n"] == 48
    assert rec.metrics["fp16_zero_grad_fraction.unscaled"] > rec.metrics["fp16_zero_grad_fraction.scaled_2^16"]


class NeverGrows(DynamicLossScaler):
    """Backs off on overflow but never grows the scale again."""

    def update(self, new_scale=None):
        before = self._scale
        super().update(new_scale)
        self._scale = min(self._scale, before)


class NeverSkips(DynamicLossScaler):
    """Adapts the scale but takes every step, inf/NaN gradients included."""

    def step(self, optimizer, *args, **kwargs):
        st = self._state(optimizer)
        if st["stage"].name == "READY":
            self.unscale_(optimizer)
        st["stage"] = type(st["stage"])["STEPPED"]
        return optimizer.step(*args, **kwargs)


class Float64Scale(DynamicLossScaler):
    """Keeps S as a Python float (float64): drifts from GradScaler at growth 1.7."""

    def update(self, new_scale=None):
        found = any(st["found_inf"] for st in self._opt_state.values())
        self.last_step_skipped = found
        self.skipped_steps += int(found)
        if found:
            self._scale *= self.backoff_factor
            self._growth_tracker = 0
        elif self._growth_tracker + 1 == self.growth_interval:
            self._scale *= self.growth_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
        self._opt_state = {}


def _with(cls):
    class Wrong(Task):
        scaler_cls = cls

    return Wrong


def test_scaler_that_never_grows_is_caught():
    expect_check_fails(_with(NeverGrows), match="scale")


def test_scaler_that_never_skips_is_caught():
    expect_check_fails(_with(NeverSkips))


def test_float64_scale_is_caught():
    expect_check_fails(_with(Float64Scale), match="S0=3")


def test_unscale_twice_raises_like_grad_scaler():
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    opt = torch.optim.SGD([p], lr=0.1)
    s = DynamicLossScaler()
    s.unscale_(opt)
    try:
        s.unscale_(opt)
    except RuntimeError as e:
        assert "already been called" in str(e)
    else:
        raise AssertionError("second unscale_ accepted")
