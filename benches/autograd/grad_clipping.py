"""2.05 Gradient clipping by norm and by value.

By norm (Pascanu, Mikolov & Bengio 2013): the gradients of all parameters are one vector g;
its p-norm total = ||(||g_1||_p, ..., ||g_k||_p)||_p (p = inf: the largest |entry|); every
gradient is scaled by min(max_norm / (total + 1e-6), 1). The 1e-6 keeps an all-zero gradient
finite and makes the clipped norm land just below max_norm. By value: every entry is clamped
to [-clip_value, clip_value]; the direction of g changes, which is why norm clipping is the
usual choice.

Compared (``kernels.optim.clipping``), the variants timed per call:

* ``torch`` (baseline): ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_`` with the
  default foreach=None (the foreach path on CPU and CUDA tensors).
* ``torch_loop``: the same with foreach=False (one norm and one multiply per tensor).
* ``loop``: the hand version, a Python loop over the tensors.
* ``foreach``: the hand version scaling with one ``torch._foreach_mul_`` (clamping with
  ``_foreach_clamp_min_/max_``) per (device, dtype) group.

Check (float32 and float64: the table's rtol, its atol scaled by the largest reference
gradient, since clipped gradients go down to 1e-6; each case on fresh copies of the same
gradients, torch's clipped gradients and returned total norm as the reference): norm types
2, 1, inf and 0, clipping active and inactive, tiny gradients (norm ~2e-3 clipped to 1e-5,
where leaving out the 1e-6 shifts the result by 5e-4 relative), parameters whose ``.grad`` is
None (left None), a zero-element gradient, all-zero gradients (no NaN), an empty parameter
list (total 0); the inf norm over a zero-element gradient raises RuntimeError as torch does;
a non-finite total raises RuntimeError under ``error_if_nonfinite=True`` and otherwise
propagates NaN as torch does. Clipping by value on the same sets; with no gradients at all
it does nothing (torch 2.13's clip_grad_value_ raises RuntimeError there, from its
tensor-grouping helper: a divergence kept on purpose and noted in the record).

Bench: one call on the gradients of 10,091,040 parameters in 104 tensors (52 Linear(440,
440)); by norm the first call scales, later calls recompute the norm and multiply by 1.

Lesson (2-core shared CPU VM, OMP_NUM_THREADS=1, float32, ``drills bench --task
autograd.grad_clipping --no-save``; load average ~8 from other jobs, so each figure is the
best median of two runs; IQR 3-60%): by norm, 10M params in 104 tensors: torch 17.4 ms,
torch_loop 16.7, loop 24.3, foreach 32.8 (time ratios to torch 0.96 / 1.40 / 1.89); by
value: 12.5 / 7.5 / 7.5 / 12.1 ms (0.60 / 0.60 / 0.97). Both runs agree on the ordering.
Clipping is memory-bound, so the count of passes over the gradients decides: torch's norm is
one fused ``linalg.vector_norm`` pass per tensor, the hand version's norm is abs, square,
sum (three passes and two temporaries), hence 1.4-1.9x. By value, one ``clamp_(min, max)``
per tensor is a single pass, while the foreach form (torch's default too) is
``_foreach_clamp_min_`` then ``_foreach_clamp_max_``: two passes, 1.6x slower; on CPU the
foreach path saves launches that cost little here, and pays in traffic.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.checks import tolerance_for
from harness.task import config_label
from kernels.optim import clipping
from kernels.optim.trajectory import bench_parameters, time_ratios


@dataclasses.dataclass(frozen=True)
class ClipBenchConfig:
    """One clipping call over the gradients of ``n_layers`` Linear(width, width) layers."""

    mode: str
    """norm (clip_grad_norm_, 2-norm) or value (clip_grad_value_)"""
    n_layers: int
    """Linear layers: 2 * n_layers gradient tensors"""
    width: int
    """features in and out of each layer"""
    threshold: float = 0.5
    """max_norm (norm) or clip_value (value), in gradient units; bench gradients are N(0, 1e-4)"""

    def label(self) -> str:
        n = self.n_layers * self.width * (self.width + 1)
        return f"{self.mode},{n / 1e6:.2g}M params in {2 * self.n_layers} tensors"


#: Norm-clipping cases: (name, gradient set, max_norm, norm_type).
NORM_CASES = [
    ("2-norm, clipping", "mixed", 0.5, 2.0),
    ("2-norm, no clipping", "mixed", 1e3, 2.0),
    ("1-norm", "mixed", 0.5, 1.0),
    ("inf-norm", "mixed", 0.3, float("inf")),
    ("0-norm (count)", "mixed", 0.5, 0.0),
    ("tiny gradients (eps matters)", "tiny", 1e-5, 2.0),
    ("grad None and a zero-element grad", "with_none_and_empty", 0.5, 2.0),
    ("all-zero gradients", "zeros", 0.5, 2.0),
    ("no parameters", "none", 0.5, 2.0),
]


def grad_set(kind: str, dtype, device, seed: int) -> list[torch.nn.Parameter]:
    """Parameters with gradients for the check: mixed shapes; ``kind`` picks the special case."""
    if kind == "none":
        return []
    gen = torch.Generator().manual_seed(seed)
    shapes = [(5, 3), (7,), (4, 4), (2, 3, 2)]
    params = []
    for i, shape in enumerate(shapes):
        p = torch.nn.Parameter(torch.randn(shape, generator=gen, dtype=dtype).to(device))
        g = torch.randn(shape, generator=gen, dtype=dtype) * (0.1 * (i + 1))
        if kind == "tiny":
            g = g * 1e-3
        elif kind == "zeros":
            g = torch.zeros(shape, dtype=dtype)
        p.grad = g.to(device)
        params.append(p)
    if kind == "with_none_and_empty":
        params[2].grad = None
        empty = torch.nn.Parameter(torch.empty(0, dtype=dtype, device=device))
        empty.grad = torch.empty(0, dtype=dtype, device=device)
        params.append(empty)
    return params


def _copy(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    out = []
    for p in params:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


def _grads(params):
    """The gradients that exist; ``_none_pattern`` says where .grad is None."""
    return [p.grad for p in params if p.grad is not None]


def _none_pattern(params) -> list[bool]:
    return [p.grad is None for p in params]


@task("autograd.grad_clipping", seed="2.05", title="gradient clipping by norm and by value")
class GradClipping(Comparison):
    __doc__ = __doc__
    variants = ("torch", "torch_loop", "loop", "foreach")
    check_dtypes = (torch.float32, torch.float64)
    sizes = {
        "tiny": [ClipBenchConfig("norm", 4, 32), ClipBenchConfig("value", 4, 32, threshold=1e-2)],
        "cpu": [ClipBenchConfig("norm", 52, 440), ClipBenchConfig("value", 52, 440, threshold=1e-2)],
        "gpu": [ClipBenchConfig("norm", 52, 1024), ClipBenchConfig("value", 52, 1024, threshold=1e-2)],
    }

    # -- the clipping functions per variant; a test swaps in a wrong one ------------------------------
    def clip_norm(
        self, variant: str, params, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
    ):
        if variant in ("torch", "torch_loop"):
            return torch.nn.utils.clip_grad_norm_(
                params, max_norm, norm_type, error_if_nonfinite, foreach=None if variant == "torch" else False
            )
        return clipping.clip_grad_norm_(params, max_norm, norm_type, error_if_nonfinite, foreach=variant == "foreach")

    def clip_value(self, variant: str, params, clip_value: float):
        if variant in ("torch", "torch_loop"):
            return torch.nn.utils.clip_grad_value_(params, clip_value, foreach=None if variant == "torch" else False)
        return clipping.clip_grad_value_(params, clip_value, foreach=variant == "foreach")

    # -- check -------------------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        own = ("loop", "foreach")
        table = tolerance_for(ctx.dtype)

        def tol(grads: list[torch.Tensor]) -> dict:
            # the table's atol is meant for O(1) values; clipped gradients here go down to ~1e-6,
            # where an absolute 1e-5 would hide any error, so atol scales with their magnitude
            scale = max([float(g.abs().max()) for g in grads if g.numel()] + [0.0])
            return dict(rtol=table.rtol, atol=table.atol * scale)

        for name, kind, max_norm, p in NORM_CASES:
            base = grad_set(kind, ctx.dtype, ctx.device, ctx.rng_seed)
            ref_params = _copy(base)
            ref_total = torch.nn.utils.clip_grad_norm_(ref_params, max_norm, p)
            for v in own:
                params = _copy(base)
                total = self.clip_norm(v, params, max_norm, p)
                where = f"{name}, max_norm={max_norm}, norm_type={p}"
                ctx.expect(
                    _none_pattern(params) == _none_pattern(ref_params),
                    f"clip_grad_norm_ {v}: {where}: a None gradient was created or dropped",
                    name="None gradients stay None",
                )
                ctx.assert_close(
                    (total, _grads(params)),
                    (ref_total, _grads(ref_params)),
                    name=f"clip_grad_norm_ {v}",
                    where=where,
                    **tol(_grads(ref_params)),
                )
            ctx.expect(
                all(torch.isfinite(g).all() for g in _grads(ref_params) if g is not None),
                f"{name}: torch's own result is not finite",
                name="reference finite",
            )
        for v in own:
            with_empty = grad_set("with_none_and_empty", ctx.dtype, ctx.device, ctx.rng_seed)
            ctx.expect_raises(
                RuntimeError,
                lambda: self.clip_norm(v, with_empty, 1.0, float("inf")),
                match="identity",
                name="inf norm of a zero-element gradient raises",
            )
            bad = grad_set("mixed", ctx.dtype, ctx.device, ctx.rng_seed)
            bad[1].grad[0] = float("inf")
            ctx.expect_raises(
                RuntimeError,
                lambda: self.clip_norm(v, _copy(bad), 1.0, 2.0, True),
                match="non-finite",
                name="error_if_nonfinite raises",
            )
            ref_params, params = _copy(bad), _copy(bad)
            torch.nn.utils.clip_grad_norm_(ref_params, 1.0)
            ctx.assert_close(
                self.clip_norm(v, params, 1.0),
                torch.tensor(float("inf"), dtype=ctx.dtype),
                name="inf total returned",
                where=v,
            )
            ctx.assert_close(
                _grads(params),
                _grads(ref_params),
                equal_nan=True,
                name=f"clip_grad_norm_ {v} with an inf gradient (NaN as torch)",
            )
        for kind in ("mixed", "with_none_and_empty"):
            base = grad_set(kind, ctx.dtype, ctx.device, ctx.rng_seed)
            ref_params = _copy(base)
            torch.nn.utils.clip_grad_value_(ref_params, 0.05)
            for v in own:
                params = _copy(base)
                self.clip_value(v, params, 0.05)
                ctx.expect(
                    _none_pattern(params) == _none_pattern(ref_params),
                    f"clip_grad_value_ {v}: gradient set {kind}: a None gradient was created or dropped",
                    name="None gradients stay None",
                )
                ctx.assert_close(
                    _grads(params),
                    _grads(ref_params),
                    name=f"clip_grad_value_ {v}",
                    where=f"gradient set {kind}, clip_value=0.05",
                    **tol(_grads(ref_params)),
                )
        # torch 2.13's clip_grad_value_ raises RuntimeError ("Expected !nested_tensorlist[0].empty()")
        # when no parameter has a gradient; the hand version does nothing, as clip_grad_norm_ does
        for v in own:
            for params in ([], [torch.nn.Parameter(torch.ones(2, dtype=ctx.dtype, device=ctx.device))]):
                self.clip_value(v, params, 0.05)
                ctx.expect(
                    all(p.grad is None for p in params),
                    f"clip_grad_value_ {v} created a gradient",
                    name="clip_grad_value_ without gradients is a no-op",
                )
        ctx.note(
            "torch.nn.utils.clip_grad_value_ raises RuntimeError when no parameter has a gradient "
            "(torch 2.13); kernels.optim.clipping.clip_grad_value_ returns without doing anything"
        )

    # -- bench -------------------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: ClipBenchConfig) -> Prepared:
        params = bench_parameters(config.n_layers, config.width, device=ctx.device, dtype=ctx.dtype, seed=ctx.rng_seed)
        n = sum(p.numel() for p in params)
        el = torch.empty((), dtype=ctx.dtype).element_size()
        if config.mode == "norm":

            def fn():
                return self.clip_norm(impl, params, config.threshold)

            traffic = 3 * n * el  # read every gradient for the norm, then read and write it to scale
        else:

            def fn():
                return self.clip_value(impl, params, config.threshold)

            traffic = 2 * n * el
        fn()
        return Prepared(fn=fn, bytes=traffic)

    def bench(self, ctx) -> None:
        super().bench(ctx)
        for name, value in time_ratios(
            ctx.record.measurements, [config_label(c) for c in ctx.configs], "torch"
        ).items():
            ctx.metric(name, value)
