"""m1 A custom backward for a new activation: Swish, y = x * sigmoid(beta * x).

Swish (Ramachandran, Zoph & Le 2017, "Searching for Activation Functions"; beta = 1 is SiLU) as
``kernels.autograd.functions.SwishFunction``: an ``autograd.Function`` whose backward, the
hand-derived f'(x) = s + beta x s (1 - s) with s = sigmoid(beta x), is a second Function whose own
backward holds the hand-derived f''(x) = beta s (1 - s) (2 + beta x (1 - 2 s)): double backward works.

Compared, each timed as forward *and* backward with a fixed upstream gradient
(``kernels.autograd.fwd_bwd``): ``autograd_derived`` (baseline), ``x * torch.sigmoid(beta * x)``
in plain ops, backward derived by autograd; ``custom_function``, ``SwishFunction``;
``torch_silu``, ``F.silu(beta * x) / beta`` (torch's fused SiLU kernels). The check adds
``gradcheck``/``gradgradcheck`` in float64, the second derivative against autograd's, and the
tensors each version saves for backward (``kernels.autograd.probes``).

Lesson: the hand-written backward saves memory, not time. It keeps only x (one tensor against two
for the derived graph) and recomputes sigmoid in backward, which costs extra elementwise passes
over memory; torch's fused SiLU forward and backward kernels read and write each element once, so
on a memory-bound op they beat both composed versions (SiLU's fused kernels:
``torch.nn.functional.silu`` docs; the bytes argument: Williams, Waterman & Patterson 2009,
"Roofline"). A custom Function pays for memory (activation storage) or a derivative autograd gets
wrong or slow; double backward needs a differentiable backward (here a second Function).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import metric, speedup
from harness.mutants import Mutant, replace_impl
from kernels.autograd.functions import SwishFunction, swish, swish_reference
from kernels.autograd.fwd_bwd import fwd_bwd
from kernels.autograd.gradcheck import expect_gradcheck
from kernels.autograd.probes import saved_for_backward, second_derivative
from kernels.autograd.swish_wrong import SiLUDerivativeForAnyBeta, WrongSecondDerivative


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
            lambda self, x, g, beta: lambda: fwd_bwd(lambda t: F.silu(beta * t), (x,), g),
        ),
    )

    def inputs(self, config, device, dtype, seed):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=gen, dtype=dtype) * 3  # both tails of the sigmoid
        g = torch.randn(config.shape, generator=gen, dtype=dtype)
        return x.to(device), g.to(device), config.beta

    def reference(self, x, g, beta):
        return fwd_bwd(lambda t: swish_reference(t, beta), (x,), g)

    def bytes(self, config, dtype):
        return 4 * math.prod(config.shape) * torch.empty((), dtype=dtype).element_size()  # read x, g; write y, dx

    @impl(baseline=True)
    def autograd_derived(self, x, g, beta):
        return lambda: fwd_bwd(lambda t: t * torch.sigmoid(beta * t), (x,), g)

    @impl
    def custom_function(self, x, g, beta):
        return lambda: fwd_bwd(lambda t: self.function_cls.apply(t, beta), (x,), g)

    @impl
    def torch_silu(self, x, g, beta):
        return lambda: fwd_bwd(lambda t: F.silu(beta * t) / beta, (x,), g)

    def extra_checks(self, ctx):
        gen = torch.Generator().manual_seed(ctx.rng_seed)
        for beta in (0.5, 1.0, 1.7):
            for shape in ((6,), (3, 4)):
                x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2).to(ctx.device).requires_grad_()
                what = f"{self.function_cls.__name__}, beta {beta}, shape {shape}"
                expect_gradcheck(ctx, lambda t: self.function_cls.apply(t, beta), (x,), what)
                own = second_derivative(lambda t: self.function_cls.apply(t, beta), x)
                ref = second_derivative(lambda t: swish_reference(t, beta), x)
                ctx.assert_close(own, ref, name="second derivative equals autograd's (float64)", where=f"beta {beta}")
        n_fn, b_fn, n_ref, b_ref = self._saved(ctx)
        ctx.expect(
            b_fn < b_ref,
            f"the Function saves {n_fn} tensors ({b_fn} B), autograd {n_ref} ({b_ref} B): a hand backward needs only x",
            name="Function saves less for backward",
        )
        ctx.expect_raises(
            TypeError, lambda: swish(torch.arange(3)), match="floating-point", name="integer input rejected"
        )

    def _saved(self, ctx) -> tuple[int, int, int, int]:
        """(tensors, bytes) saved for backward by the Function, then by the derived graph; records metrics."""
        x = torch.randn(4096, generator=torch.Generator().manual_seed(ctx.rng_seed), dtype=ctx.dtype).to(ctx.device)
        n_fn, b_fn = saved_for_backward(lambda t: self.function_cls.apply(t, 1.0), x)
        n_ref, b_ref = saved_for_backward(lambda t: swish_reference(t, 1.0), x)
        ctx.metric("saved_tensors_custom", n_fn)
        ctx.metric("saved_tensors_autograd_derived", n_ref)
        ctx.metric("saved_bytes_ratio", b_fn / b_ref)
        return n_fn, b_fn, n_ref, b_ref

    def bench(self, ctx) -> None:
        super().bench(ctx)
        self._saved(ctx)
