"""2.06 A custom ``torch.autograd.Function`` for softmax.

Compared, each timed as forward *and* backward (fresh leaf, forward, ``torch.autograd.grad``
with a fixed upstream gradient g; returns (y, dL/dx)), against ``torch.softmax`` under
autograd (the baseline):

* ``function``: ``kernels.autograd.functions.SoftmaxFunction``: y = exp(x - max) / sum exp(x - max),
  saving y; backward dx = y * (g - sum(g * y)), the Jacobian diag(y) - y y^T applied to g
  without forming it.
* ``composed``: ``softmax_composed``, the same forward from four differentiable torch ops (amax,
  sub, exp, div by sum); autograd derives the backward op by op, saving every intermediate.

Logits of +-1e4 (exp(1e4) overflows even float64) must give finite outputs and gradients equal
to torch's, which only the max subtraction makes true; ``gradgradcheck`` in float64 sees a
backward that is not itself differentiable (e.g. one recomputing y from a detached x).

Lesson: torch's softmax and its backward are one fused pass each (max, exp, sum and divide
per row: ``aten/src/ATen/native/SoftMax.cpp`` and ``cuda/SoftMax.cu``); the Function runs
each formula as a separate full-tensor op (4-6 passes over memory, temporaries included);
the composed version adds autograd's per-op backward and saved intermediates on top. Max
subtraction is free at this level: it is one of the passes anyway.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Operator, impl, task
from harness.claims import speedup
from harness.mutants import Mutant, replace_impl
from kernels.autograd import wrong
from kernels.autograd.functions import SoftmaxFunction, softmax, softmax_composed
from kernels.autograd.fwd_bwd import fwd_bwd
from kernels.autograd.gradcheck import expect_gradcheck


@dataclasses.dataclass(frozen=True)
class SoftmaxConfig:
    """softmax over ``dim`` of logits x of ``shape``; upstream gradient g of the same shape."""

    shape: tuple[int, ...]
    """shape of the logits"""
    dim: int = -1
    """dimension normalised over (negative counts from the end)"""

    def label(self) -> str:
        return "x".join(map(str, self.shape)) + f",dim={self.dim}"


@task("autograd.softmax_function", seed="2.06", title="custom autograd.Function for softmax")
class SoftmaxFunctionTask(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [SoftmaxConfig((5, 7)), SoftmaxConfig((3, 6, 4), dim=1), SoftmaxConfig((11,), dim=0)],
        "cpu": [SoftmaxConfig((4096, 1024)), SoftmaxConfig((256, 32768)), SoftmaxConfig((65536, 16))],
        "gpu": [SoftmaxConfig((16384, 1024)), SoftmaxConfig((2048, 32768)), SoftmaxConfig((1 << 20, 16))],
    }
    claims = (
        speedup("torch_softmax", over="function", at_least=2, text="torch's fused softmax >= 2x the Function"),
        speedup(
            "function",
            over="composed",
            at_least=1.5,
            text="the Function's closed-form backward >= 1.5x autograd through the composed ops",
        ),
    )
    mutants = (
        Mutant(
            "no_max_subtraction",
            "exp(x) / sum exp(x): NaN at logits 1e4",
            {"function_cls": wrong.NoMaxSubtractionSoftmax},
            match="not finite",
        ),
        Mutant(
            "detached_recompute",
            "backward recomputes y from a detached x",
            {"function_cls": wrong.DetachedRecomputeSoftmax},
            match="gradgradcheck failed",
        ),
        replace_impl(
            "flipped_backward_sign",
            "dx = y (sum(g y) - g)",
            "function",
            lambda self, x, g, dim: (
                lambda: fwd_bwd(lambda t: wrong.FlippedBackwardSoftmax.apply(t, dim % x.dim()), (x,), g)
            ),
        ),
    )
    #: the Function under test; the mutants swap in wrong ones
    function_cls = SoftmaxFunction

    def inputs(self, config, device, dtype, seed):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=gen, dtype=dtype) * 3
        g = torch.randn(config.shape, generator=gen, dtype=dtype)
        return x.to(device), g.to(device), config.dim

    def reference(self, x, g, dim):
        return fwd_bwd(lambda t: torch.softmax(t, dim), (x,), g)

    def bytes(self, config, dtype):
        return 4 * math.prod(config.shape) * torch.empty((), dtype=dtype).element_size()  # read x, g; write y, dx

    @impl(baseline=True)
    def torch_softmax(self, x, g, dim):
        return lambda: fwd_bwd(lambda t: torch.softmax(t, dim), (x,), g)

    @impl
    def function(self, x, g, dim):
        d = dim % x.dim()
        return lambda: fwd_bwd(lambda t: self.function_cls.apply(t, d), (x,), g)

    @impl
    def composed(self, x, g, dim):
        return lambda: fwd_bwd(lambda t: softmax_composed(t, dim), (x,), g)

    def extra_checks(self, ctx):
        gen = torch.Generator().manual_seed(ctx.rng_seed)
        # +-1e4 logits: exp overflows without the max subtraction (float32 and float64 alike)
        big = (torch.randn(4, 9, generator=gen) * 1e4).to(ctx.device, ctx.dtype)
        big[0] = torch.tensor([1e4, -1e4, 1e4 - 1, 0, 5, -5, 1e4 - 0.5, -1e4, 2], dtype=ctx.dtype)
        g = torch.randn(4, 9, generator=gen).to(ctx.device, ctx.dtype)
        y, dx = fwd_bwd(lambda t: self.function_cls.apply(t, 1), (big,), g)
        finite = bool(torch.isfinite(y).all() and torch.isfinite(dx).all())
        ctx.expect(
            finite,
            f"{self.function_cls.__name__} on logits of +-1e4: output or gradient not finite "
            f"({int((~torch.isfinite(y)).sum())} of {y.numel()} outputs); subtract the row max",
            name="finite for logits +-1e4",
        )
        ctx.assert_close((y, dx), self.reference(big, g, 1), name="equals torch.softmax at +-1e4")
        for shape, dim in (((3, 5), 1), ((2, 3, 4), 1)):
            x = torch.randn(shape, generator=gen, dtype=torch.float64).to(ctx.device).requires_grad_()
            what = f"{self.function_cls.__name__}, shape {shape}, dim {dim}"
            expect_gradcheck(ctx, lambda t, dim=dim: self.function_cls.apply(t, dim), (x,), what)
        ctx.expect_raises(
            IndexError,
            lambda: softmax(torch.zeros(2, 3), dim=2),
            match="out of range",
            name="dim out of range rejected",
        )
