"""2.01 A custom ``torch.autograd.Function`` for ReLU.

Compared, each timed as forward *and* backward (the closure makes a fresh leaf, runs the
forward, then ``torch.autograd.grad`` with a fixed upstream gradient g, and returns
(y, dL/dx)), against ``F.relu`` under autograd (the baseline):

* ``function``: ``kernels.autograd.functions.ReLUFunction``: forward ``clamp_min(0)`` saving the mask
  x > 0; backward ``where(mask, g, 0)``.
* ``no_autograd``: the same two formulas called directly, no graph: the floor that tells how
  much autograd's bookkeeping (graph nodes, saved tensors, the engine) costs.

Besides equality with F.relu on inputs holding exact zeros (torch's derivative there is 0),
the check passes NaN and +-inf through forward as torch.relu does, runs ``gradcheck`` and
``gradgradcheck`` in float64 off the kink, and rejects an integer tensor.

Lesson: the custom Function costs about what the graph-free formulas cost, so autograd's
bookkeeping is not where the time goes: the built-in wins because ``relu`` and
``threshold_backward`` are one fused kernel each, while the hand version runs clamp +
compare + where, allocating a mask and a temporary on the way (3x the memory traffic).
Writing a Function buys control of the backward, not speed (PyTorch docs, "Extending
torch.autograd").
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_impl
from kernels.autograd import wrong
from kernels.autograd.functions import ReLUFunction, relu
from kernels.autograd.fwd_bwd import fwd_bwd
from kernels.autograd.gradcheck import expect_gradcheck


@dataclasses.dataclass(frozen=True)
class ActConfig:
    """An activation applied elementwise to x of ``shape``, with upstream gradient g of the same shape."""

    shape: tuple[int, ...]
    """shape of x (elements, any rank)"""

    def label(self) -> str:
        return "x".join(map(str, self.shape))


@task("autograd.relu_function", seed="2.01", title="custom autograd.Function for ReLU")
class ReLUFunctionTask(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [ActConfig((7,)), ActConfig((33, 17)), ActConfig((2, 3, 5, 4))],
        "cpu": [ActConfig((1 << 16,)), ActConfig((1 << 20,)), ActConfig((4096, 1024))],
        "gpu": [ActConfig((1 << 20,)), ActConfig((1 << 24,)), ActConfig((16384, 8192))],
    }
    claims = (
        speedup("torch_relu", over="function", at_least=1.5, text="F.relu's fused kernels >= 1.5x the custom Function"),
        time_ratio(
            "function",
            to="no_autograd",
            at_most=1.5,
            text="the Function within 1.5x of its formulas without a graph (bookkeeping is not the cost)",
        ),
    )
    mutants = (
        Mutant(
            "leaky_backward",
            "backward lets the gradient through x < 0",
            {"function_cls": wrong.LeakyBackwardReLU},
            match="function",
        ),
        Mutant(
            "leaky_backward_gradcheck",
            "the same Function, the timed path right: gradcheck alone sees it",
            {"function_cls": wrong.LeakyBackwardReLU},
            match="gradcheck",
            impl="function",
            wrong=lambda self, x, g: self.torch_relu(x, g),
        ),
        replace_impl(
            "gradient_one_at_zero",
            "mask x >= 0: derivative 1 at x == 0",
            "no_autograd",
            lambda self, x, g: lambda: wrong.relu_ge_mask(x, g),
        ),
    )
    #: the Function under test; the mutants swap in a wrong one
    function_cls = ReLUFunction

    def inputs(self, config, device, dtype, seed):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=gen, dtype=dtype)
        x.view(-1)[::5] = 0.0  # exact zeros: the derivative there is 0 by torch's convention
        g = torch.randn(config.shape, generator=gen, dtype=dtype)
        return x.to(device), g.to(device)

    def reference(self, x, g):
        return fwd_bwd(F.relu, (x,), g)

    def bytes(self, config, dtype):
        # read x and g, write y and dx (the bool mask is an implementation detail)
        return 4 * math.prod(config.shape) * torch.empty((), dtype=dtype).element_size()

    @impl(baseline=True)
    def torch_relu(self, x, g):
        return lambda: fwd_bwd(F.relu, (x,), g)

    @impl
    def function(self, x, g):
        return lambda: fwd_bwd(self.function_cls.apply, (x,), g)

    @impl
    def no_autograd(self, x, g):
        def run():
            y = x.clamp_min(0)
            return y, torch.where(x > 0, g, torch.zeros((), dtype=g.dtype, device=g.device))

        return run

    def extra_checks(self, ctx):
        special = torch.tensor(
            [float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 2.5, -2.5], dtype=ctx.dtype, device=ctx.device
        )
        ctx.assert_close(
            self.function_cls.apply(special),
            torch.relu(special),
            equal_nan=True,
            name="forward on NaN / inf / signed zeros",
        )
        gen = torch.Generator().manual_seed(ctx.rng_seed)
        for shape in ((6,), (3, 4)):
            x = torch.randn(shape, generator=gen, dtype=torch.float64)
            x = (x.sign() * (x.abs() + 0.1)).to(ctx.device).requires_grad_()  # |x| >= 0.1: off the kink
            expect_gradcheck(ctx, self.function_cls.apply, (x,), f"{self.function_cls.__name__}, shape {shape}")
        ctx.expect_raises(
            TypeError, lambda: relu(torch.arange(3)), match="floating-point", name="integer input rejected"
        )
