"""2.03 Huber loss.

Huber (1964); PyTorch doc ``torch.nn.HuberLoss``: with d = input - target,
loss = 0.5 d^2 where ``|d| < delta``, else delta (``|d|`` - 0.5 delta): quadratic near zero, linear
(robust to outliers) beyond delta, continuous with a continuous first derivative at ``|d| = delta``.

Compared, each timed as forward *and* backward (:func:`kernels.autograd.fwd_bwd.fwd_bwd`:
loss, d/dinput, d/dtarget for a fixed upstream gradient), against ``F.huber_loss`` (the baseline):

* ``own``: ``kernels.layers.losses.huber_loss``: abs, a ``where`` between the two branches and the
  reduction, in elementwise torch ops; autograd derives the backward.
* ``smooth_l1``: ``delta * F.smooth_l1_loss(beta=delta)``: the identity Huber = delta *
  SmoothL1 with beta = delta (SmoothL1 divides its quadratic branch by beta).

Some differences sit exactly at ``|d| = delta`` (the linear branch, as ATen); mismatched shapes
(no silent broadcast of (N, 1) against (N,)) and delta <= 0 raise ValueError.

Lesson: the hand-written loss is about ten elementwise ops forward (sub, abs, compare, two
branches, where, reduce) and their autograd backward, each a full pass over memory with a
temporary, where ATen's ``huber_loss`` and ``huber_loss_backward`` are one fused pass each
(``aten/src/ATen/native/Loss.cpp``). SmoothL1 times delta is the same loss at the
built-in's speed (one extra scalar multiply, which on the unreduced loss costs two more full
passes with its backward).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import replace_impl
from kernels.autograd import wrong
from kernels.autograd.fwd_bwd import fwd_bwd
from kernels.autograd.gradcheck import expect_gradcheck
from kernels.layers.losses import huber_loss


@dataclasses.dataclass(frozen=True)
class HuberConfig:
    """Huber loss between input and target of ``shape``."""

    shape: tuple[int, ...]
    """shape of input and target"""
    reduction: str = "mean"
    """none (per-element loss), mean or sum"""
    delta: float = 1.0
    """where the quadratic branch turns linear, in the units of the targets"""

    def label(self) -> str:
        return "x".join(map(str, self.shape)) + f",{self.reduction},delta={self.delta}"


def _timed(loss, inp, tgt, g, reduction, delta):
    """fwd+bwd of ``loss(input, target, reduction=, delta=)`` on fresh leaves, as a closure to time."""
    return lambda: fwd_bwd(lambda a, b: loss(a, b, reduction=reduction, delta=delta), (inp, tgt), g)


def _own_is(loss):
    """A wrong ``own`` implementation for the mutants: ``loss`` timed as ``own`` times huber_loss."""
    return lambda self, *inputs: _timed(loss, *inputs)


@task("autograd.huber_loss", seed="2.03", title="Huber loss")
class HuberLossTask(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [
            HuberConfig(shape, r, delta)
            for r in ("none", "mean", "sum")
            for shape, delta in (((4, 5), 1.0), ((13,), 0.5), ((2, 3, 4), 2.5))
        ],
        "cpu": [HuberConfig((1 << 20,)), HuberConfig((4096, 1024), "none"), HuberConfig((4096, 1024), "mean", 0.5)],
        "gpu": [HuberConfig((1 << 24,)), HuberConfig((16384, 4096), "none"), HuberConfig((16384, 4096), "mean", 0.5)],
    }
    claims = (
        speedup("torch_huber", over="own", at_least=3, text="ATen's fused Huber >= 3x the hand-written one (fwd+bwd)"),
        time_ratio("smooth_l1", to="torch_huber", at_most=1.5, text="delta * SmoothL1 within 1.5x of F.huber_loss"),
    )
    mutants = (
        replace_impl("no_half", "quadratic branch d^2 without the 0.5", "own", _own_is(wrong.huber_no_half)),
        replace_impl(
            "no_linear_offset",
            "linear branch delta |d| without the -0.5 delta",
            "own",
            _own_is(wrong.huber_no_linear_offset),
        ),
        replace_impl("mean_is_sum", "reduction mean computed as sum", "own", _own_is(wrong.huber_mean_is_sum)),
    )

    def inputs(self, config, device, dtype, seed):
        gen = torch.Generator().manual_seed(seed)
        target = torch.randn(config.shape, generator=gen, dtype=dtype)
        # |d| ~ 1.5 delta * |N(0,1)|: a bit over half the elements in the quadratic branch
        diff = torch.randn(config.shape, generator=gen, dtype=dtype) * (1.5 * config.delta)
        target.view(-1)[::7] = 0.0
        diff.view(-1)[::7] = config.delta  # exactly on the boundary (input = delta, target = 0)
        diff.view(-1)[3::14] = -config.delta
        inp = target + diff
        loss_shape = config.shape if config.reduction == "none" else ()
        g = torch.randn(loss_shape, generator=gen, dtype=dtype)
        return inp.to(device), target.to(device), g.to(device), config.reduction, config.delta

    def reference(self, inp, tgt, g, reduction, delta):
        return _timed(F.huber_loss, inp, tgt, g, reduction, delta)()

    def bytes(self, config, dtype):
        n = math.prod(config.shape)
        el = torch.empty((), dtype=dtype).element_size()
        # read input, target (and g when unreduced); write the two gradients (and the loss)
        return el * n * (6 if config.reduction == "none" else 4)

    @impl(baseline=True)
    def torch_huber(self, inp, tgt, g, reduction, delta):
        return _timed(F.huber_loss, inp, tgt, g, reduction, delta)

    @impl
    def own(self, inp, tgt, g, reduction, delta):
        return _timed(huber_loss, inp, tgt, g, reduction, delta)

    @impl
    def smooth_l1(self, inp, tgt, g, reduction, delta):
        return lambda: fwd_bwd(
            lambda a, b: delta * F.smooth_l1_loss(a, b, reduction=reduction, beta=delta), (inp, tgt), g
        )

    def extra_checks(self, ctx):
        gen = torch.Generator().manual_seed(ctx.rng_seed)
        for reduction in ("none", "mean", "sum"):
            a = torch.randn(3, 4, generator=gen, dtype=torch.float64)
            d = torch.randn(3, 4, generator=gen, dtype=torch.float64)
            d = d.sign() * (d.abs() * 0.3 + 0.05)  # |d| in [0.05, 1.2) ...
            d[d.abs().sub(0.7).abs() < 0.05] *= 1.3  # ... but never within 0.05 of delta = 0.7
            a, b = a.to(ctx.device).requires_grad_(), (a + d).detach().to(ctx.device).requires_grad_()
            fn = lambda x, y, r=reduction: huber_loss(x, y, reduction=r, delta=0.7)  # noqa: E731 - one use
            expect_gradcheck(ctx, fn, (a, b), f"huber_loss, reduction={reduction}")
        x, y = torch.zeros(4, 3), torch.zeros(3, 4)
        e = ctx.expect_raises(ValueError, lambda: huber_loss(x, y), match="(4, 3)", name="mismatched shapes rejected")
        ctx.expect("(3, 4)" in str(e), f"the shape error names only one shape: {e}", name="mismatched shapes rejected")
        col = torch.zeros(5, 1)
        ctx.expect_raises(
            ValueError, lambda: huber_loss(col, torch.zeros(5)), match="(5,)", name="(N, 1) vs (N,) not broadcast"
        )
        ctx.expect_raises(
            ValueError, lambda: huber_loss(x, x, delta=0.0), match="delta > 0", name="delta <= 0 rejected"
        )
