"""2.05 Gradient clipping by norm and by value.

By norm (Pascanu, Mikolov & Bengio 2013): the gradients of all parameters are one vector g;
its p-norm ``total = ||(||g_1||_p, ..., ||g_k||_p)||_p`` (p = inf: the largest ``|entry|``); every
gradient is scaled by min(max_norm / (total + 1e-6), 1). The 1e-6 keeps an all-zero gradient
finite and makes the clipped norm land just below max_norm. By value: every entry is clamped
to [-clip_value, clip_value]; the direction of g changes, which is why norm clipping is the
usual choice.

Compared, one call on the gradients of 52 Linear(width, width) layers (104 tensors):
``torch`` (baseline: ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``, default
foreach), ``torch_loop`` (foreach=False), and the hand versions of
:mod:`kernels.optim.clipping`: ``loop`` (a Python loop over the tensors) and ``foreach``
(one ``_foreach_mul_``, or ``_foreach_clamp_min_/max_``, per (device, dtype) group).

Check (float32 and float64, torch's clipped gradients and total norm as the reference,
atol scaled by the largest reference gradient): norm types 2, 1, inf and 0, clipping on and
off, tiny gradients (where leaving out the 1e-6 shifts the result by 5e-4 relative), ``.grad``
None (left None), zero-element and all-zero gradients, no parameters; the inf norm of a
zero-element gradient and a non-finite total under ``error_if_nonfinite`` raise
RuntimeError, otherwise NaN propagates as in torch. Clipping by value on the same sets; with
no gradients at all it does nothing (torch 2.13's ``clip_grad_value_`` raises RuntimeError
there: a divergence kept on purpose and noted in the record).

Lesson: clipping is memory-bound, so the count of passes over the gradients decides.
Torch's norm is one fused ``linalg.vector_norm`` pass per tensor, the hand version's norm
is abs, square, sum (three passes, two temporaries). By value, one ``clamp_(min, max)`` per
tensor is a single pass, while the foreach form (torch's default too) is
``_foreach_clamp_min_`` then ``_foreach_clamp_max_``: two passes. On CPU the foreach path
saves kernel launches that cost little and pays in traffic; on a GPU, where launches cost,
it is the faster path ("Generally, the performance ordering of the 3 implementations is
fused > foreach > for-loop": PyTorch docs, ``torch.optim``).
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.checks import tolerance_for
from harness.claims import time_ratio
from harness.mutants import Mutant
from kernels.optim import clipping
from kernels.optim import grad_sets as gs
from kernels.optim.trajectory import bench_parameters


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


# -- wrong versions, declared as mutants below ------------------------------------------
def _hand_clip(params, max_norm, norm_type=2.0, error_if_nonfinite=False, *, eps=1e-6, per_tensor=False, two=False):
    """Norm clipping by hand with a switchable bug (eps, per-tensor norms, always the 2-norm)."""
    grads = gs.grads(params)
    if not grads:
        return torch.tensor(0.0)
    total = clipping.total_grad_norm(grads, norm_type, error_if_nonfinite)
    total_2 = clipping.total_grad_norm(grads, 2.0)
    with torch.no_grad():
        for g in grads:
            norm = clipping.vector_norm(g, norm_type) if per_tensor else total_2 if two else total
            g.mul_(torch.clamp(max_norm / (norm + eps), max=1.0))
    return total


def _wrong_norm(**bug):
    """``clip_norm`` whose ``loop`` variant is :func:`_hand_clip` with ``bug``."""

    def clip_norm(self, variant, params, max_norm, norm_type=2.0, error_if_nonfinite=False):
        if variant == "loop":
            return _hand_clip(params, max_norm, norm_type, error_if_nonfinite, **bug)
        return GradClipping.clip_norm(self, variant, params, max_norm, norm_type, error_if_nonfinite)

    return clip_norm


def _one_sided_value(self, variant, params, clip_value):
    """The foreach variant clamps only from above."""
    if variant != "foreach":
        return GradClipping.clip_value(self, variant, params, clip_value)
    for g in gs.grads(params):
        g.clamp_(max=clip_value)


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
    claims = (
        time_ratio(
            "foreach", to="torch", at_most=2.5, config="norm", text="hand foreach norm clip within 2.5x of torch"
        ),
        time_ratio(
            "torch_loop",
            to="torch",
            at_most=1.0,
            config="value",
            device="cpu",
            text="CPU, by value: one clamp_ per tensor no slower than foreach's clamp_min_ + clamp_max_",
        ),
    )
    mutants = tuple(
        Mutant(name, what, {attr: wrong}, match=match)
        for name, what, attr, wrong, match in (
            ("no_eps", "max_norm / total without the 1e-6", "clip_norm", _wrong_norm(eps=0.0), "tiny gradients"),
            ("per_tensor_norm", "each tensor by its own norm", "clip_norm", _wrong_norm(per_tensor=True), "norm_ loop"),
            ("always_two_norm", "the 2-norm whatever norm_type", "clip_norm", _wrong_norm(two=True), "norm_type=1.0"),
            ("one_sided_value", "clamps only from above", "clip_value", _one_sided_value, "clip_grad_value_ foreach"),
        )
    )

    # -- the clipping functions per variant; the mutants swap in wrong ones -----------------------
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
            base = gs.grad_set(kind, ctx.dtype, ctx.device, ctx.rng_seed)
            ref = gs.copy_params(base)
            ref_total = torch.nn.utils.clip_grad_norm_(ref, max_norm, p)
            for v in own:
                params = gs.copy_params(base)
                total = self.clip_norm(v, params, max_norm, p)
                where = f"{name}, max_norm={max_norm}, norm_type={p}"
                self._same(ctx, f"clip_grad_norm_ {v}", where, params, ref, total, ref_total, tol)
        for v in own:
            with_empty = gs.grad_set("with_none_and_empty", ctx.dtype, ctx.device, ctx.rng_seed)
            inf_norm = lambda: self.clip_norm(v, with_empty, 1.0, float("inf"))  # the call under test
            name = "inf norm of a zero-element gradient raises"
            ctx.expect_raises(RuntimeError, inf_norm, match="identity", name=name)
            bad = gs.grad_set("mixed", ctx.dtype, ctx.device, ctx.rng_seed)
            bad[1].grad[0] = float("inf")
            strict = lambda: self.clip_norm(v, gs.copy_params(bad), 1.0, 2.0, True)
            ctx.expect_raises(RuntimeError, strict, match="non-finite", name="error_if_nonfinite raises")
            ref, params = gs.copy_params(bad), gs.copy_params(bad)
            inf = torch.nn.utils.clip_grad_norm_(ref, 1.0)
            got = (self.clip_norm(v, params, 1.0), gs.grads(params))
            ctx.assert_close(got, (inf, gs.grads(ref)), equal_nan=True, name=f"clip_grad_norm_ {v}, inf gradient")
        for kind in ("mixed", "with_none_and_empty"):
            base = gs.grad_set(kind, ctx.dtype, ctx.device, ctx.rng_seed)
            ref = gs.copy_params(base)
            torch.nn.utils.clip_grad_value_(ref, 0.05)
            for v in own:
                params = gs.copy_params(base)
                self.clip_value(v, params, 0.05)
                where = f"gradient set {kind}, clip_value=0.05"
                self._same(ctx, f"clip_grad_value_ {v}", where, params, ref, None, None, tol)
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

    @staticmethod
    def _same(ctx, label, where, params, ref, out, ref_out, tol) -> None:
        """Same None pattern and, within ``tol``, the same gradients (and returned norm) as torch."""
        ctx.expect(
            gs.none_pattern(params) == gs.none_pattern(ref),
            f"{label}: {where}: a None gradient was created or dropped",
            name="None gradients stay None",
        )
        got, want = gs.grads(params), gs.grads(ref)
        if out is not None:
            got, want = (out, got), (ref_out, want)
        ctx.assert_close(got, want, name=label, where=where, **tol(gs.grads(ref)))

    # -- bench -------------------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: ClipBenchConfig) -> Prepared:
        params = bench_parameters(config.n_layers, config.width, device=ctx.device, dtype=ctx.dtype, seed=ctx.rng_seed)
        n = sum(p.numel() for p in params)
        el = torch.empty((), dtype=ctx.dtype).element_size()
        clip = self.clip_norm if config.mode == "norm" else self.clip_value
        # norm: read every gradient for the norm, then read and write it to scale; value: read + write
        traffic = (3 if config.mode == "norm" else 2) * n * el

        def fn():
            return clip(impl, params, config.threshold)

        fn()
        return Prepared(fn=fn, bytes=traffic)
