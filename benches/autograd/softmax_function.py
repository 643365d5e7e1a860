"""2.06 A custom ``torch.autograd.Function`` for softmax.

Compared, each timed as forward *and* backward (fresh leaf, forward, ``torch.autograd.grad``
with a fixed upstream gradient g; returns (y, dL/dx)), against ``torch.softmax`` under
autograd (the baseline):

* ``function``: ``kernels.autograd.functions.SoftmaxFunction``: y = exp(x - max) / sum exp(x - max),
  saving y; backward dx = y * (g - sum(g * y)), the Jacobian diag(y) - y y^T applied to g
  without forming it.
* ``composed``: the same forward from four differentiable torch ops (amax, sub, exp, div by
  sum); autograd derives the backward from each op's own rule and saves every intermediate.

Check (float32 table, 3 seeds per config, along the last dim and a middle one): forward and
gradient equal torch's; logits of +-1e4 (exp(1e4) overflows even float64) give finite
outputs and gradients equal to torch's: only the max subtraction makes that true;
``gradcheck`` and ``gradgradcheck`` in float64 (the second-order check sees a backward that
is not itself differentiable, e.g. one that recomputes y from a detached x); a dim out of
range raises IndexError as torch does.

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
from kernels.autograd.functions import SoftmaxFunction, softmax
from kernels.autograd.gradcheck import gradcheck_verdict


@dataclasses.dataclass(frozen=True)
class SoftmaxConfig:
    """softmax over ``dim`` of logits x of ``shape``; upstream gradient g of the same shape."""

    shape: tuple[int, ...]
    """shape of the logits"""
    dim: int = -1
    """dimension normalised over (negative counts from the end)"""

    def label(self) -> str:
        return "x".join(map(str, self.shape)) + f",dim={self.dim}"


def composed_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Stable softmax from plain ops; autograd derives its backward op by op."""
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim, keepdim=True)


def _fwd_bwd(apply, x: torch.Tensor, g: torch.Tensor):
    """(y, dL/dx) for L = sum(y * g), through autograd on a fresh leaf sharing x's storage."""
    leaf = x.detach().requires_grad_()
    y = apply(leaf)
    (dx,) = torch.autograd.grad(y, leaf, g)
    return y.detach(), dx


# -- wrong versions, declared as mutants below ------------------------------------------
class _NoMaxSubtraction(SoftmaxFunction):
    """exp(x) / sum exp(x): right for small logits, inf / inf = NaN at 1e4."""

    @staticmethod
    def forward(ctx, x, dim):
        e = x.exp()
        y = e / e.sum(dim=dim, keepdim=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y


class _DetachedRecompute(torch.autograd.Function):
    """Right first derivative, but backward recomputes y from a detached x: the backward is
    not differentiable in x, so double backward misses a term (gradgradcheck's job)."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.save_for_backward(x)
        ctx.dim = dim
        return torch.softmax(x, dim)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        y = torch.softmax(x.detach(), ctx.dim)
        return y * (g - (g * y).sum(ctx.dim, keepdim=True)), None


class _FlippedBackward(SoftmaxFunction):
    """The backward's sign flipped: (sum(g y) - g) y."""

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * ((g * y).sum(ctx.dim, keepdim=True) - g), None


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
            {"function_cls": _NoMaxSubtraction},
            match="not finite",
        ),
        Mutant(
            "detached_recompute",
            "backward recomputes y from a detached x",
            {"function_cls": _DetachedRecompute},
            match="gradgradcheck failed",
        ),
        replace_impl(
            "flipped_backward_sign",
            "dx = y (sum(g y) - g)",
            "function",
            lambda self, x, g, dim: lambda: _fwd_bwd(lambda t: _FlippedBackward.apply(t, dim % x.dim()), x, g),
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
        return _fwd_bwd(lambda t: torch.softmax(t, dim), x, g)

    def bytes(self, config, dtype):
        return 4 * math.prod(config.shape) * torch.empty((), dtype=dtype).element_size()  # read x, g; write y, dx

    @impl(baseline=True)
    def torch_softmax(self, x, g, dim):
        return lambda: _fwd_bwd(lambda t: torch.softmax(t, dim), x, g)

    @impl
    def function(self, x, g, dim):
        d = dim % x.dim()
        return lambda: _fwd_bwd(lambda t: self.function_cls.apply(t, d), x, g)

    @impl
    def composed(self, x, g, dim):
        return lambda: _fwd_bwd(lambda t: composed_softmax(t, dim), x, g)

    def extra_checks(self, ctx):
        gen = torch.Generator().manual_seed(ctx.rng_seed)
        # +-1e4 logits: exp overflows without the max subtraction (float32 and float64 alike)
        big = (torch.randn(4, 9, generator=gen) * 1e4).to(ctx.device, ctx.dtype)
        big[0] = torch.tensor([1e4, -1e4, 1e4 - 1, 0, 5, -5, 1e4 - 0.5, -1e4, 2], dtype=ctx.dtype)
        g = torch.randn(4, 9, generator=gen).to(ctx.device, ctx.dtype)
        y, dx = _fwd_bwd(lambda t: self.function_cls.apply(t, 1), big, g)
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
            ok, why = gradcheck_verdict(lambda t, dim=dim: self.function_cls.apply(t, dim), (x,))
            ctx.expect(
                ok,
                f"{self.function_cls.__name__}, shape {shape}, dim {dim}: {why}",
                name="gradcheck + gradgradcheck float64",
            )
        ctx.expect_raises(
            IndexError,
            lambda: softmax(torch.zeros(2, 3), dim=2),
            match="out of range",
            name="dim out of range rejected",
        )
