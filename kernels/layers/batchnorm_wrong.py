"""Wrong batch normalizations: the mutants of nn_basics.batchnorm_compare, each a plausible mistake.

Each subclasses the right one (:class:`kernels.layers.batchnorm.BatchNorm1d` / ``BatchNorm2d``,
or its :class:`~kernels.layers.batchnorm.BatchNormFunction`) and breaks one promise of
``nn.BatchNorm1d``/``nn.BatchNorm2d``; the task's module-equivalence check must catch each one
(``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.layers.batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction


class BiasedRunningVar1d(BatchNorm1d):
    """WRONG: updates running_var with the biased batch variance (the one used to normalise)."""

    def forward(self, x):
        before = self.running_var.clone()
        y = super().forward(x)
        if self.training and self.track_running_stats:
            f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            with torch.no_grad():
                self.running_var.copy_((1 - f) * before + f * x.var([0, *range(2, x.dim())], correction=0))
        return y


class NoMomentumNone2d(BatchNorm2d):
    """WRONG: treats momentum=None as momentum=0.1 instead of a cumulative average."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.momentum = 0.1 if self.momentum is None else self.momentum


class BatchStatsInEval1d(BatchNorm1d):
    """WRONG: normalises with the batch's statistics in eval mode too (ignores the running estimates)."""

    def forward(self, x):
        if self.training or not self.track_running_stats:
            return super().forward(x)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class DropsXhatTerm(BatchNormFunction):
    """WRONG: backward without the mean(g * xhat) term of the input gradient."""

    @staticmethod
    def backward(ctx, gy, _gm, _gv):
        xhat, invstd, weight = ctx.saved_tensors
        dims = [0, *range(2, xhat.dim())]
        g = gy * weight.reshape(1, -1, *([1] * (gy.dim() - 2))) if weight is not None else gy
        gx = invstd * (g - g.mean(dims, keepdim=True))
        return gx, (gy * xhat).sum(dims) if weight is not None else None, gy.sum(dims) if ctx.has_bias else None, None


class WrongGrad1d(BatchNorm1d):
    """WRONG: BatchNorm1d whose backward is :class:`DropsXhatTerm`."""

    autograd_function = DropsXhatTerm
