"""m1 A custom backward for a new activation: Swish, y = x * sigmoid(beta * x).

Swish (Ramachandran, Zoph & Le 2017, "Searching for Activation Functions"; beta = 1 is
SiLU) as ``kernels.autograd.functions.SwishFunction``: a ``torch.autograd.Function`` whose backward
is the hand-derived f'(x) = s + beta x s (1 - s), s = sigmoid(beta x), computed by a second
Function whose own backward holds the hand-derived
f''(x) = beta s (1 - s) (2 + beta x (1 - 2 s)), so double backward works too.

Compared, each timed as forward *and* backward (fresh leaf, forward, ``autograd.grad`` with
a fixed upstream gradient g; returns (y, dL/dx)):

* ``autograd_derived`` (baseline): ``x * torch.sigmoid(beta * x)`` in plain ops; autograd
  derives the backward from the graph (sigmoid, mul).
* ``custom_function``: ``SwishFunction``.
* ``torch_silu``: ``F.silu(beta * x) / beta`` (the same function through torch's fused SiLU
  kernels: x sigmoid(beta x) = silu(beta x) / beta).

Check: forward and gradient of each equal the autograd-derived ones (float32 table, 3
seeds per shape, beta in {1, 1.7}); ``gradcheck`` *and* ``gradgradcheck`` pass in float64
for beta in {0.5, 1, 1.7}; the second derivative from double backward equals autograd's
second derivative of the plain-ops version (float64); the Function saves one tensor for
backward (x), the derived graph two (x and sigmoid(beta x)), counted with
``torch.autograd.graph.saved_tensors_hooks``; integer input raises TypeError.

Lesson: the hand-written backward saves memory, not time. It keeps only x (one tensor
against two for the derived graph) and recomputes sigmoid in backward, which costs extra
elementwise passes over memory; torch's fused SiLU forward and backward kernels read and
write each element once, so on a memory-bound op they beat both composed versions (SiLU's
fused kernels: ``torch.nn.functional.silu`` docs; the bytes argument: Williams, Waterman &
Patterson 2009, "Roofline"). A custom Function is worth it for memory (activation storage)
or for a derivative autograd gets wrong or slow, and double backward needs a backward that
is itself differentiable (here a second Function).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import metric, speedup
from harness.mutants import Mutant, replace_impl
from kernels.autograd.functions import SwishFunction, _swish_parts, swish, swish_reference
from kernels.autograd.gradcheck import gradcheck_verdict


@dataclasses.dataclass(frozen=True)
class SwishConfig:
    """Swish with parameter ``beta`` on x of ``shape``, upstream gradient g of the same shape."""

    shape: tuple[int, ...]
    """shape of x (elements, any rank)"""
    beta: float = 1.0
    """the slope inside the sigmoid (1.0 is SiLU); a constant here, not learned"""

    def label(self) -> str:
        return "x".join(map(str, self.shape)) + f",beta={self.beta:g}"


_FUSED = "torch's fused SiLU forward+backward >= 2x the autograd-derived composed Swish"


def _fwd_bwd(apply, x: torch.Tensor, g: torch.Tensor):
    """(y, dL/dx) for L = sum(y * g), through autograd on a fresh leaf sharing x's storage."""
    leaf = x.detach().requires_grad_()
    y = apply(leaf)
    (dx,) = torch.autograd.grad(y, leaf, g)
    return y.detach(), dx


def _saved_bytes(fn, x: torch.Tensor) -> tuple[int, int]:
    """(tensors, bytes) autograd saves for backward in ``fn(x)``, distinct storages counted once."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    leaf = x.detach().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(leaf)
    return len(seen), sum(seen.values())


# -- wrong Functions (the mutants) ---------------------------------------------------------------
class _WrongSecond(torch.autograd.Function):
    """WRONG: first derivative right, second derivative missing the beta x (1 - 2s) term."""

    @staticmethod
    def forward(ctx, grad_out, x, beta):
        ctx.save_for_backward(grad_out, x)
        ctx.beta = beta
        return grad_out * _swish_parts(x, beta)[1]

    @staticmethod
    def backward(ctx, gg):
        grad_out, x = ctx.saved_tensors
        s, fprime = _swish_parts(x, ctx.beta)
        return gg * fprime, gg * grad_out * ctx.beta * s * (1 - s) * 2, None


class WrongSecondDerivative(SwishFunction):
    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return _WrongSecond.apply(grad_out, x, ctx.beta), None


class SiLUDerivativeForAnyBeta(SwishFunction):
    """WRONG: SiLU's derivative (beta = 1) whatever beta is: right only at beta = 1."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_out * (s + x * s * (1 - s)), None


@task("m1.custom_activation", seed="m1", title="custom backward for a new activation")
class CustomActivation(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [SwishConfig((7,)), SwishConfig((33, 17), beta=1.7), SwishConfig((2, 3, 5, 4))],
        "cpu": [SwishConfig((1 << 16,)), SwishConfig((1 << 20,)), SwishConfig((4096, 1024), beta=1.7)],
        "gpu": [SwishConfig((1 << 20,)), SwishConfig((1 << 24,)), SwishConfig((16384, 8192), beta=1.7)],
    }
    metrics = {"saved_bytes_ratio": "bytes the Function saves for backward / bytes autograd's graph saves"}
    claims = (
        speedup("torch_silu", over="autograd_derived", at_least=2.0, text=_FUSED),
        metric("saved_bytes_ratio", "<=", 0.5, text="the hand backward saves <= half the bytes autograd saves"),
    )
    #: the Function under test; the mutants swap in wrong ones
    function_cls = SwishFunction
    mutants = (
        Mutant(
            "wrong_second_derivative",
            "double backward drops the beta x (1 - 2s) term of f''",
            {"function_cls": WrongSecondDerivative},
            match="gradgradcheck",
        ),
        Mutant(
            "beta_ignored_in_backward",
            "backward uses SiLU's derivative whatever beta is",
            {"function_cls": SiLUDerivativeForAnyBeta},
            match="custom_function",
        ),
        replace_impl(
            "silu_not_rescaled",
            "silu(beta x) without the / beta",
            "torch_silu",
            lambda self, x, g, beta: lambda: _fwd_bwd(lambda t: F.silu(beta * t), x, g),
        ),
    )

    def inputs(self, config, device, dtype, seed):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=gen, dtype=dtype) * 3  # both tails of the sigmoid
        g = torch.randn(config.shape, generator=gen, dtype=dtype)
        return x.to(device), g.to(device), config.beta

    def reference(self, x, g, beta):
        return _fwd_bwd(lambda t: swish_reference(t, beta), x, g)

    def bytes(self, config, dtype):
        n = 1
        for s in config.shape:
            n *= s
        return 4 * n * torch.empty((), dtype=dtype).element_size()  # read x, g; write y, dx

    @impl(baseline=True)
    def autograd_derived(self, x, g, beta):
        return lambda: _fwd_bwd(lambda t: t * torch.sigmoid(beta * t), x, g)

    @impl
    def custom_function(self, x, g, beta):
        return lambda: _fwd_bwd(lambda t: self.function_cls.apply(t, beta), x, g)

    @impl
    def torch_silu(self, x, g, beta):
        return lambda: _fwd_bwd(lambda t: F.silu(beta * t) / beta, x, g)

    def extra_checks(self, ctx):
        gen = torch.Generator().manual_seed(ctx.rng_seed)
        for beta in (0.5, 1.0, 1.7):
            for shape in ((6,), (3, 4)):
                x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2).to(ctx.device).requires_grad_()
                ok, why = gradcheck_verdict(lambda t: self.function_cls.apply(t, beta), (x,))
                ctx.expect(
                    ok,
                    f"{self.function_cls.__name__}, beta {beta}, shape {shape}: {why}",
                    name="gradcheck + gradgradcheck float64",
                )
                ctx.assert_close(
                    self._second_derivative(lambda t: self.function_cls.apply(t, beta), x),
                    self._second_derivative(lambda t: swish_reference(t, beta), x),
                    name="second derivative equals autograd's (float64)",
                    where=f"beta {beta}",
                )
        n_fn, b_fn, n_ref, b_ref = self._saved(ctx)
        ctx.expect(
            b_fn < b_ref,
            f"the Function saves {n_fn} tensors ({b_fn} B), autograd {n_ref} ({b_ref} B): "
            "a hand backward should need only x",
            name="Function saves less for backward",
        )
        ctx.expect_raises(
            TypeError, lambda: swish(torch.arange(3)), match="floating-point", name="integer input rejected"
        )

    def _saved(self, ctx) -> tuple[int, int, int, int]:
        """(tensors, bytes) saved for backward by the Function, then by the derived graph; records metrics."""
        x = torch.randn(4096, generator=torch.Generator().manual_seed(ctx.rng_seed), dtype=ctx.dtype).to(ctx.device)
        n_fn, b_fn = _saved_bytes(lambda t: self.function_cls.apply(t, 1.0), x)
        n_ref, b_ref = _saved_bytes(lambda t: swish_reference(t, 1.0), x)
        ctx.metric("saved_tensors_custom", n_fn)
        ctx.metric("saved_tensors_autograd_derived", n_ref)
        ctx.metric("saved_bytes_ratio", b_fn / b_ref)
        return n_fn, b_fn, n_ref, b_ref

    def bench(self, ctx) -> None:
        super().bench(ctx)
        self._saved(ctx)

    @staticmethod
    def _second_derivative(fn, x: torch.Tensor) -> torch.Tensor:
        """d/dx of (dy/dx . v) with v fixed: elementwise f''(x) * v, through double backward."""
        leaf = x.detach().requires_grad_()
        v = torch.linspace(-1, 1, leaf.numel(), dtype=leaf.dtype, device=leaf.device).reshape(leaf.shape)
        (d1,) = torch.autograd.grad(fn(leaf), leaf, v, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), leaf)
        return d2
