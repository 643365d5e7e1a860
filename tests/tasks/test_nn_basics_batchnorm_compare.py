"""3.04 batchnorm_compare: own BatchNorm equals torch's; planted bugs are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.layers.batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction

Task = REGISTRY.get("nn_basics.batchnorm_compare")


def test_check_passes_and_records_curves_per_variant():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves if c["name"] == "train loss"} == {"no_bn", "own_bn", "torch_bn"}


class BiasedRunningVar1d(BatchNorm1d):
    """Updates running_var with the biased batch variance (the one used to normalise)."""

    def forward(self, x):
        before = self.running_var.clone()
        y = super().forward(x)
        if self.training and self.track_running_stats:
            f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            dims = [0, *range(2, x.dim())]
            with torch.no_grad():
                self.running_var.copy_((1 - f) * before + f * x.var(dims, correction=0))
        return y


class NoMomentumNone2d(BatchNorm2d):
    """Treats momentum=None as momentum=0.1 instead of a cumulative average."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        if self.momentum is None:
            self.momentum = 0.1


class BatchStatsInEval1d(BatchNorm1d):
    """Normalises with the batch's statistics in eval mode too (ignores the running estimates)."""

    def forward(self, x):
        if self.training or not self.track_running_stats:
            return super().forward(x)
        return torch.nn.functional.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class WrongGradFunction(BatchNormFunction):
    """Drops the mean(g * xhat) term of the input gradient."""

    @staticmethod
    def backward(ctx, gy, _gm, _gv):
        xhat, invstd, weight = ctx.saved_tensors
        dims = [0, *range(2, xhat.dim())]
        g = gy * weight.reshape(1, -1, *([1] * (gy.dim() - 2))) if weight is not None else gy
        gx = invstd * (g - g.mean(dims, keepdim=True))
        gw = (gy * xhat).sum(dims) if weight is not None else None
        gb = gy.sum(dims) if ctx.has_bias else None
        return gx, gw, gb, None


def test_biased_running_variance_is_caught():
    expect_check_fails(type("T", (Task,), {"bn1d": BiasedRunningVar1d}), match="running_var")


def test_momentum_none_as_constant_is_caught():
    expect_check_fails(type("T", (Task,), {"bn2d": NoMomentumNone2d}), match="running_")


def test_batch_statistics_in_eval_are_caught():
    expect_check_fails(type("T", (Task,), {"bn1d": BatchStatsInEval1d}), match="output (eval)")


def test_wrong_input_gradient_is_caught(monkeypatch):
    monkeypatch.setattr(BatchNormFunction, "backward", WrongGradFunction.backward)
    expect_check_fails(Task, match="grad input (train)")
