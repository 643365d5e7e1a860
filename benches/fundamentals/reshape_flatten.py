"""1.07 reshape / view / flatten: a view where the strides allow one, a copy where not.

A reshape can be a view when strides exist for the new shape that visit the same
elements in the same order (:func:`kernels.tensor.views.view_strides`, ATen's
``computeStride``). ``own_view`` raises where ``Tensor.view`` raises; ``own_reshape`` and
``own_flatten`` (:mod:`kernels.tensor.reshape`) return a view when one exists and copy
otherwise, like ``Tensor.reshape`` and ``torch.flatten``.

Compared: ``torch_reshape`` (baseline: ``Tensor.reshape`` / ``torch.flatten``), ``own``
(``own_reshape`` / ``own_flatten``) and ``copy`` (always a contiguous copy first;
``x.contiguous()`` is not enough, it returns ``x`` itself when x is contiguous). Returning a
view IS the point here, so ``allow_alias`` is set and storage sharing is checked against
torch's choice. Layouts: ``contiguous``, ``permuted`` (dims reversed) and ``sliced`` (every
other element of the last dim).

Lesson: a view costs microseconds whatever the size, since only shape and strides
change; a copy costs time in proportion to the bytes, and a copy out of a transposed
layout is slower still (strided reads). ``reshape`` silently picks one or the other
("When possible, the returned tensor will be a view of input. Otherwise, it will be a
copy": PyTorch docs, ``torch.reshape``), so whether it allocates depends on the input's
strides, not on the call.
"""

from __future__ import annotations

import dataclasses
import math
import random

import torch

from harness import Operator, impl, task
from harness.claims import speedup
from harness.mutants import Mutant, replace_impl
from kernels.tensor.reshape import layout_input, own_flatten, own_reshape, own_view, random_view_case, shares_storage
from kernels.tensor.views import infer_shape, view_strides


@dataclasses.dataclass(frozen=True)
class ReshapeConfig:
    """Reshape (``new_shape``) or flatten (``flatten``) a tensor of ``shape`` in ``layout``."""

    shape: tuple[int, ...]
    """shape of the input (elements)"""
    layout: str = "contiguous"
    """contiguous, permuted (dims reversed) or sliced (every other element of the last dim)"""
    new_shape: tuple[int, ...] | None = None
    """target of reshape (one -1 allowed)"""
    flatten: tuple[int, int] | None = None
    """(start_dim, end_dim) of flatten"""

    @property
    def label(self) -> str:
        op = f"reshape{self.new_shape}" if self.new_shape is not None else f"flatten{self.flatten}"
        return f"{'x'.join(map(str, self.shape))} {self.layout} {op}".replace(" ", "_").replace(",_", ",")


def _sweep(small: int, big: int) -> list[ReshapeConfig]:
    """flatten(0, 1) of (n, n, 16): a view at two sizes, then the permuted layout (no view exists)."""
    cases = ((small, "contiguous"), (big, "contiguous"), (big, "permuted"))
    return [ReshapeConfig((n, n, 16), lay, flatten=(0, 1)) for n, lay in cases]


# -- wrong versions, declared as mutants below ------------------------------------------
def _copying(self, x, new_shape, flatten):
    """flatten that always copies."""
    if new_shape is not None:
        return lambda: x.reshape(new_shape)
    return lambda: torch.flatten(x.contiguous().clone(), *flatten)


def _contiguous_only(self, x, new_shape, flatten):
    """x.contiguous() returns x itself when x is contiguous: no copy at all."""
    c = x.contiguous()
    return lambda: c.view(new_shape) if new_shape is not None else torch.flatten(c, *flatten)


def _lying_view(self, x, new_shape, flatten):
    """Pretends every tensor is contiguous: a "view" of a permuted tensor reads the wrong elements."""
    shape = new_shape if new_shape is not None else torch.flatten(torch.empty(x.shape), *flatten).shape
    shape = infer_shape(shape, x.numel())
    return lambda: x.as_strided(shape, torch.empty(shape).stride(), x.storage_offset())


def _strict_rule(shape, stride, new_shape):
    """Too strict: refuses views of sliced/permuted tensors that torch can view."""
    return view_strides(shape, stride, new_shape) if tuple(stride) == torch.empty(shape).stride() else None


@task("fundamentals.reshape_flatten", seed="1.07", title="reshape/view/flatten operations")
class ReshapeFlatten(Operator):
    __doc__ = __doc__
    allow_alias = True  # views are the point; sharing is checked against torch's choice instead
    claims = (
        speedup(
            "torch_reshape",
            over="copy",
            at_least=100,
            config="contiguous",
            text="flatten as a view >= 100x a contiguous copy at the largest contiguous size",
        ),
        speedup(
            "copy",
            over="torch_reshape",
            at_least=0.5,
            config="permuted",
            text="no view exists for the permuted layout: reshape costs >= 0.5x an explicit copy",
        ),
    )
    mutants = (
        replace_impl("always_copies", "flatten copies where a view exists", "own", _copying, match="be a view"),
        replace_impl("copy_is_a_view", "x.contiguous() as the copy", "copy", _contiguous_only, match="should copy"),
        replace_impl("illegal_view", "a 'view' of a permuted tensor with contiguous strides", "own", _lying_view),
        Mutant(
            "rule_only_contiguous",
            "no view of a non-contiguous input",
            {"view_rule": staticmethod(_strict_rule)},
            match="view",
        ),
    )
    #: decides whether a view exists; the mutants swap in a wrong one
    view_rule = staticmethod(view_strides)
    sizes = {
        # each layout with a target that can be a view and one that cannot (or can only in part)
        "tiny": [
            ReshapeConfig((4, 6, 5), new_shape=(24, 5)),
            ReshapeConfig((4, 6, 5), new_shape=(2, -1, 3, 5)),
            ReshapeConfig((4, 6, 5), "permuted", new_shape=(-1,)),
            ReshapeConfig((4, 6, 5), "permuted", new_shape=(5, 24)),
            ReshapeConfig((4, 6, 5), "sliced", new_shape=(24, 5)),
            ReshapeConfig((4, 6, 5), "sliced", new_shape=(4, 30)),
            ReshapeConfig((3, 1, 4, 2), flatten=(1, 2)),
            ReshapeConfig((3, 1, 4, 2), "permuted", flatten=(0, -1)),
            ReshapeConfig((3, 1, 4, 2), "sliced", flatten=(0, 2)),
            ReshapeConfig((3, 1, 4, 2), "permuted", flatten=(-2, -1)),
        ],
        "cpu": _sweep(256, 1024),
        "gpu": _sweep(1024, 4096),
    }

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        return layout_input(config.shape, config.layout, g, dtype).to(device), config.new_shape, config.flatten

    def reference(self, x, new_shape, flatten):
        return x.reshape(new_shape) if new_shape is not None else torch.flatten(x, *flatten)

    def bytes(self, config, dtype):
        return 2 * math.prod(config.shape) * torch.empty((), dtype=dtype).element_size()  # a copy: read + write

    def prepare(self, ctx, impl, config):
        p = super().prepare(ctx, impl, config)
        x, new_shape, flatten = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
        if impl != "copy" and shares_storage(self.reference(x, new_shape, flatten), x):
            p.bytes = None  # a view moves no data: GB/s would be meaningless
        return p

    @impl(baseline=True)
    def torch_reshape(self, x, new_shape, flatten):
        return lambda: self.reference(x, new_shape, flatten)

    @impl
    def own(self, x, new_shape, flatten):
        rule = self.view_rule
        return lambda: own_reshape(x, new_shape, rule) if new_shape is not None else own_flatten(x, *flatten, rule)

    @impl
    def copy(self, x, new_shape, flatten):
        def run():
            c = x.clone(memory_format=torch.contiguous_format)  # always a new buffer
            return c.view(new_shape) if new_shape is not None else torch.flatten(c, *flatten)

        return run

    def extra_checks(self, ctx):
        for config in ctx.configs:
            x, new_shape, flatten = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            ref = self.reference(x, new_shape, flatten)
            for spec in ctx.implementations(self):
                out = getattr(self, spec.method)(x, new_shape, flatten)()
                want = False if spec.name == "copy" else shares_storage(ref, x)
                got = "shares storage with" if shares_storage(out, x) else "copies"
                should = "be a view" if want else "copy"
                msg = f"{spec.name} [{config.label}]: {got} the input where it should {should}"
                ctx.expect(shares_storage(out, x) == want, msg, name="view where legal, copy where not")
                if want:
                    ctx.expect(
                        out.stride() == ref.stride(),
                        f"{spec.name} [{config.label}]: strides {out.stride()}, torch's view has {ref.stride()}",
                        name="view strides equal torch's",
                    )
        self._check_view_rule(ctx)
        self._check_flatten(ctx)

    def _check_view_rule(self, ctx, n: int = 500):
        """own_view succeeds exactly where Tensor.view does, on random layouts and targets."""
        rng = random.Random(ctx.rng_seed)
        for _ in range(n):
            x, target = random_view_case(rng, ctx.dtype, ctx.device)
            try:
                want = x.view(target)
            except RuntimeError:
                want = None
            try:
                got = own_view(x, target, self.view_rule)
            except ValueError as e:
                got = None
                ctx.expect(
                    "use reshape" in str(e), f"own_view error does not say what to do: {e}", name="clear view error"
                )
            where = f"{tuple(x.shape)} strides {x.stride()} -> {tuple(target)}"
            ctx.expect(
                (got is None) == (want is None),
                f"own_view {where}: {'refused' if got is None else 'allowed'}, "
                f"Tensor.view {'refused' if want is None else 'allowed'}",
                name="view rule agrees with Tensor.view",
            )
            if got is not None and want is not None:
                ctx.expect(
                    got.stride() == want.stride() and torch.equal(got, want),
                    f"own_view {where}: strides {got.stride()}, Tensor.view {want.stride()}",
                    name="view rule agrees with Tensor.view",
                )

    def _check_flatten(self, ctx):
        g = torch.Generator().manual_seed(ctx.rng_seed)
        for layout in ("contiguous", "permuted", "sliced"):
            x = layout_input((2, 3, 1, 4), layout, g, ctx.dtype).to(ctx.device)
            for s in range(-4, 4):
                for e in range(-4, 4):
                    if s % 4 > e % 4:
                        fn = lambda: own_flatten(x, s, e)  # the call under test
                        ctx.expect_raises(ValueError, fn, match="after", name="flatten start after end raises")
                        continue
                    out, ref = own_flatten(x, s, e, self.view_rule), torch.flatten(x, s, e)
                    ctx.assert_close(out, ref, name="flatten(start, end) equals torch", where=f"{layout} ({s}, {e})")
                    ctx.expect(
                        shares_storage(out, x) == shares_storage(ref, x),
                        f"flatten {layout} ({s}, {e}): storage sharing differs from torch.flatten",
                        name="view where legal, copy where not",
                    )
        x = torch.randn(2, 3, device=ctx.device, dtype=ctx.dtype)
        ctx.expect_raises(IndexError, lambda: own_flatten(x, 0, 2), match="out of range", name="flatten dim range")
        ctx.assert_close(own_flatten(torch.tensor(5.0)), torch.flatten(torch.tensor(5.0)), name="flatten 0-d")
        ctx.expect_raises(ValueError, lambda: own_reshape(x, (-1, -1)), match="only one", name="two -1 raise")
        ctx.expect_raises(ValueError, lambda: own_reshape(x, (4, 2)), match="invalid", name="wrong numel raises")
