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

Lesson (2-core shared CPU VM, OMP_NUM_THREADS=1, float32, ``drills bench --task
autograd.softmax_function --no-save``; load average ~8 from other jobs, so each figure is
the best median of two runs; IQR 10-70%):
4096x1024: torch 10.7 ms, function 38 ms, composed 131 ms; 256x32768: 24 / 172 / 514 ms;
65536x16: 5.9 / 11.7 / 23.6 ms. torch's softmax and its backward are one fused pass each
(max, exp, sum and divide per row in registers); the Function runs each formula as a
separate full-tensor op (4-6 passes over memory, temporaries included) and is 2-7x slower;
the composed version adds autograd's per-op backward and saved intermediates on top, another
2-3x. Max subtraction is free at this level: it is one of the passes anyway.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Operator, impl, task
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


@task("autograd.softmax_function", seed="2.06", title="custom autograd.Function for softmax")
class SoftmaxFunctionTask(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [SoftmaxConfig((5, 7)), SoftmaxConfig((3, 6, 4), dim=1), SoftmaxConfig((11,), dim=0)],
        "cpu": [SoftmaxConfig((4096, 1024)), SoftmaxConfig((256, 32768)), SoftmaxConfig((65536, 16))],
        "gpu": [SoftmaxConfig((16384, 1024)), SoftmaxConfig((2048, 32768)), SoftmaxConfig((1 << 20, 16))],
    }
    #: the Function under test; a test swaps in a wrong one
    function_cls = SoftmaxFunction

    def inputs(self, config, device, dtype, seed):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=gen, dtype=dtype) * 3
        g = torch.randn(config.shape, generator=gen, dtype=dtype)
        return x.to(device), g.to(device), config.dim

    def reference(self, x, g, dim):
        return _fwd_bwd(lambda t: torch.softmax(t, dim), x, g)

    def bytes(self, config, dtype):
        n = 1
        for s in config.shape:
            n *= s
        return 4 * n * torch.empty((), dtype=dtype).element_size()  # read x, g; write y, dx

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
