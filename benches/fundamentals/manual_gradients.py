"""1.05 Gradients by hand vs autograd, for L = mean((tanh(x W + b) - y)**2) / 2.

The expression is one dense layer with a tanh and a squared error: x (N, D), W (D, M),
b (M,), y (N, M). Derived by the chain rule (with z = x W + b, h = tanh z, r = h - y):

    dL/dh = r / (N M)                      dL/dz = dL/dh * (1 - h**2)   (tanh' = 1 - tanh**2)
    dL/dW = x^T dL/dz   (D, M)             dL/db = sum_n dL/dz   (M,)     dL/dx = dL/dz W^T   (N, D)

Compared, each returning (L, dL/dx, dL/dW, dL/db), against ``torch.autograd.grad`` (``autograd``,
the baseline: the graph recorded and walked at run time): ``manual``, the forward keeping h, then
the formulas above, no graph (:mod:`kernels.autograd.tanh_mse`), and ``function``, the same
formulas as the backward of a ``torch.autograd.Function`` (``TanhMSE``), so it composes with
autograd; ``gradcheck`` in float64 checks that backward against finite differences.

Lesson: the backward of a dense layer costs two matmuls (x^T dz and dz W^T) to the forward's one,
so the backward is about twice the forward and fwd+bwd about 3x (the "backward is 2x forward"
rule of Kaplan et al., "Scaling Laws for Neural Language Models", 2020, sec. 2.1: 6N flops per
token for training vs 2N for the forward; ``bwd_over_fwd_<impl>`` measures it). Autograd's graph
bookkeeping adds a little on top, which shows at small sizes and vanishes at large ones; both
need the same two matmuls, so no gradient trick beats the arithmetic.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Operator, Prepared, impl, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant, replace_call
from kernels.autograd import wrong
from kernels.autograd.fwd_bwd import fwd_bwd
from kernels.autograd.gradcheck import expect_gradcheck
from kernels.autograd.tanh_mse import TanhMSE, forward, grads_by_hand


@dataclasses.dataclass(frozen=True)
class GradConfig:
    """x (n, d) @ W (d, m) + b (m,), compared with y (n, m)."""

    n: int
    """batch rows"""
    d: int
    """input features"""
    m: int
    """output features"""


@task("fundamentals.manual_gradients", seed="1.05", title="gradients by hand vs autograd")
class ManualGradients(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [GradConfig(5, 3, 4), GradConfig(17, 9, 6), GradConfig(1, 7, 1)],
        "cpu": [GradConfig(256, 256, 256), GradConfig(1024, 512, 512), GradConfig(2048, 1024, 1024)],
        "gpu": [GradConfig(1024, 1024, 1024), GradConfig(8192, 4096, 4096), GradConfig(16384, 8192, 8192)],
    }
    claims = (
        time_ratio(
            "manual",
            to="autograd",
            at_most=1.1,
            text="hand-written gradients within 1.1x of autograd at the largest size (the same two matmuls)",
        ),
        time_ratio(
            "function",
            to="autograd",
            at_most=1.1,
            text="the autograd.Function within 1.1x of autograd at the largest size",
        ),
        metric(
            "bwd_over_fwd_autograd",
            "<=",
            3.0,
            text="autograd's backward costs <= 3x the forward at the largest size (two matmuls to one)",
        ),
    )
    metrics = {
        f"bwd_over_fwd_{i}": f"(fwd+bwd - fwd) / fwd of {i} at the largest size, x"
        for i in ("autograd", "manual", "function")
    }
    mutants = (
        replace_call("no_tanh_prime", "dL/dz forgets the factor tanh' = 1 - h**2", "manual", wrong.grads_no_tanh_prime),
        replace_call(
            "bias_grad_averaged", "dL/db averaged over the batch instead of summed", "manual", wrong.grads_bias_averaged
        ),
        Mutant(
            "wrong_backward",
            "the Function's backward gives dL/dW 1 % off",
            {"function_cls": wrong.WrongTanhMSE},
            match="function",
        ),
        Mutant(
            "wrong_backward_gradcheck",
            "the same wrong Function, the timed path right: gradcheck alone sees it",
            {"function_cls": wrong.WrongTanhMSE},
            match="gradcheck",
            impl="function",
            wrong=lambda self, *inputs: self.autograd(*inputs),
        ),
    )
    #: the Function under gradcheck; the mutants swap in a wrong one
    function_cls = TanhMSE

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(config.n, config.d, generator=g, dtype=dtype)
        w = torch.randn(config.d, config.m, generator=g, dtype=dtype) / config.d**0.5  # keeps tanh off saturation
        b = torch.randn(config.m, generator=g, dtype=dtype) * 0.1
        y = torch.rand(config.n, config.m, generator=g, dtype=dtype) * 2 - 1
        return tuple(t.to(device) for t in (x, w, b, y))

    def reference(self, x, w, b, y):
        return fwd_bwd(lambda *leaves: forward(*leaves, y), (x, w, b))  # (L, dL/dx, dL/dw, dL/db)

    def flops(self, config):
        return 6 * config.n * config.d * config.m  # forward matmul 2NDM, backward two matmuls 4NDM

    @impl(baseline=True)
    def autograd(self, x, w, b, y):
        return lambda: fwd_bwd(lambda *leaves: forward(*leaves, y), (x, w, b))

    @impl
    def manual(self, x, w, b, y):
        return lambda: grads_by_hand(x, w, b, y)

    @impl
    def function(self, x, w, b, y):
        return lambda: fwd_bwd(lambda *leaves: self.function_cls.apply(*leaves, y), (x, w, b))

    def extra_checks(self, ctx):
        for i, config in enumerate(ctx.configs):
            x, w, b, y = self.inputs(config, ctx.device, torch.float64, ctx.rng_seed)
            where = f"n={config.n},d={config.d},m={config.m}"
            # float64: the hand formulas to 1e-7, not just to float32's tolerance
            ctx.assert_close(grads_by_hand(x, w, b, y), self.reference(x, w, b, y), name="manual float64", where=where)
            # the full Jacobian on the first config; random projections ("fast gradcheck") on the larger ones
            leaves = tuple(t.detach().requires_grad_() for t in (x, w, b))
            what = f"gradcheck of {self.function_cls.__name__} (float64, {where})"
            fn = lambda *t: self.function_cls.apply(*t, y)  # noqa: E731 - L of the leaves, y fixed
            expect_gradcheck(ctx, fn, leaves, what, second_order=False, fast_mode=i > 0)

    def bench(self, ctx):
        times = super().bench(ctx)  # implementation -> its Measurement at the largest size
        config = ctx.configs[-1]  # the forward alone, at the largest size: the bwd/fwd ratios
        x, w, b, y = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)  # none requires grad: no graph
        fwd = Prepared(fn=lambda: forward(x, w, b, y), flops=2 * config.n * config.d * config.m)
        t_fwd = ctx.measure("forward", fwd, config=config).median_ms
        for name, t in times.items():
            ctx.metric(f"bwd_over_fwd_{name}", (t.median_ms - t_fwd) / t_fwd)
