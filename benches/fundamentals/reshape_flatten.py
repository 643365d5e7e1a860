"""1.07 reshape / view / flatten: a view where the strides allow one, a copy where not.

A reshape can be a view when strides exist for the new shape that visit the same
elements in the same order; :func:`kernels.tensor.views.view_strides` decides it the
way ATen's ``computeStride`` does (old dimensions cut into contiguous chunks; new
dimensions may re-split a chunk but not straddle two). ``own_view`` raises where
``Tensor.view`` raises; ``own_reshape`` returns a view (``as_strided`` on the same
storage) when one exists and otherwise copies to a contiguous buffer first, like
``Tensor.reshape``; ``own_flatten(start, end)`` merges dims start..end (negative dims
allowed; start == end returns the input itself, a 0-d tensor becomes (1,)).

Compared (returning a view IS the point here, so ``allow_alias`` is set and storage
sharing is checked explicitly against torch's choice):

* ``torch_reshape`` (baseline): ``Tensor.reshape`` / ``torch.flatten``.
* ``own``: ``own_reshape`` / ``own_flatten``.
* ``copy``: always a contiguous copy first (``x.contiguous()`` is not enough: it returns
  ``x`` itself when x is already contiguous).

Legend: layouts are ``contiguous``, ``permuted`` (dims reversed, a transposed view)
and ``sliced`` (every other element of the last dim).

Lesson: a view costs microseconds whatever the size, since only shape and strides
change; a copy costs time in proportion to the bytes, and a copy out of a transposed
layout is slower still (strided reads). ``reshape`` silently picks one or the other,
so whether it allocates depends on the input's strides, not on the call. Measured on
this shared 2-core CPU VM, one thread (OMP_NUM_THREADS=1), float32, flatten(0, 1),
medians: 256x256x16 contiguous (4 MB): torch_reshape 4 us, own 8.5 us (Python stride
logic), copy 0.42 ms (20 GB/s); 1024x1024x16 contiguous (64 MB): 1.2 us, 32 us,
111 ms (1.2 GB/s: fresh 64 MB buffers page-fault here); 1024x1024x16 permuted (no view
exists, all three copy): 434 / 348 / 460 ms (0.3-0.4 GB/s).
"""

from __future__ import annotations

import dataclasses
import math
import random

import torch

from harness import Operator, impl, task
from kernels.tensor.views import infer_shape, view_strides


def own_view(x: torch.Tensor, shape) -> torch.Tensor:
    """``x.view(shape)``: the same storage with new strides.

    Raises:
        ValueError: bad shape (see infer_shape), or no strides exist (a new dimension
            would span two non-contiguous chunks): use own_reshape, which copies.
    """
    shape = infer_shape(shape, x.numel())
    strides = view_strides(x.shape, x.stride(), shape)
    if strides is None:
        raise ValueError(
            f"view of shape {tuple(x.shape)} with strides {x.stride()} as {shape} is impossible: a new "
            "dimension would span non-contiguous memory; use reshape (it copies) or .contiguous() first"
        )
    return x.as_strided(shape, strides, x.storage_offset())


def own_reshape(x: torch.Tensor, shape) -> torch.Tensor:
    """``x.reshape(shape)``: a view when legal, else a view of a contiguous copy."""
    shape = infer_shape(shape, x.numel())
    if view_strides(x.shape, x.stride(), shape) is not None:
        return own_view(x, shape)
    return own_view(x.clone(memory_format=torch.contiguous_format), shape)


def own_flatten(x: torch.Tensor, start_dim: int = 0, end_dim: int = -1) -> torch.Tensor:
    """``torch.flatten(x, start_dim, end_dim)``.

    Raises:
        IndexError: a dim out of range. ValueError: start_dim after end_dim.
    """
    if x.ndim == 0:
        return own_reshape(x, (1,))
    for d in (start_dim, end_dim):
        if not -x.ndim <= d < x.ndim:
            raise IndexError(f"flatten: dim {d} out of range for a {x.ndim}-d tensor (valid {-x.ndim}..{x.ndim - 1})")
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    if start == end:
        return x  # nothing to merge; torch returns the input itself
    merged = math.prod(x.shape[start : end + 1])
    return own_reshape(x, (*x.shape[:start], merged, *x.shape[end + 1 :]))  # (..., s_start*...*s_end, ...)


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


def make_input(shape, layout, g, dtype) -> torch.Tensor:
    if layout == "permuted":
        # (s_n-1, ..., s_0) contiguous, permuted to (s_0, ..., s_n-1): strides ascending
        return torch.randn(shape[::-1], generator=g, dtype=dtype).permute(*range(len(shape) - 1, -1, -1))
    if layout == "sliced":
        return torch.randn(*shape[:-1], 2 * shape[-1], generator=g, dtype=dtype)[..., ::2]  # stride 2 in the last dim
    return torch.randn(shape, generator=g, dtype=dtype)


def _shares(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


@task("fundamentals.reshape_flatten", seed="1.07", title="reshape/view/flatten operations")
class ReshapeFlatten(Operator):
    __doc__ = __doc__
    allow_alias = True  # views are the point; sharing is checked against torch's choice instead
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
        "cpu": [
            ReshapeConfig((256, 256, 16), flatten=(0, 1)),
            ReshapeConfig((1024, 1024, 16), flatten=(0, 1)),
            ReshapeConfig((1024, 1024, 16), "permuted", flatten=(0, 1)),
        ],
        "gpu": [
            ReshapeConfig((1024, 1024, 16), flatten=(0, 1)),
            ReshapeConfig((4096, 4096, 16), flatten=(0, 1)),
            ReshapeConfig((4096, 4096, 16), "permuted", flatten=(0, 1)),
        ],
    }

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        return make_input(config.shape, config.layout, g, dtype).to(device), config.new_shape, config.flatten

    def reference(self, x, new_shape, flatten):
        return x.reshape(new_shape) if new_shape is not None else torch.flatten(x, *flatten)

    def bytes(self, config, dtype):
        return 2 * math.prod(config.shape) * torch.empty((), dtype=dtype).element_size()  # a copy: read + write

    def prepare(self, ctx, impl, config):
        p = super().prepare(ctx, impl, config)
        x, new_shape, flatten = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
        if impl != "copy" and _shares(self.reference(x, new_shape, flatten), x):
            p.bytes = None  # a view moves no data: GB/s would be meaningless
        return p

    @impl(baseline=True)
    def torch_reshape(self, x, new_shape, flatten):
        return lambda: self.reference(x, new_shape, flatten)

    @impl
    def own(self, x, new_shape, flatten):
        return lambda: own_reshape(x, new_shape) if new_shape is not None else own_flatten(x, *flatten)

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
                want = False if spec.name == "copy" else _shares(ref, x)
                ctx.expect(
                    _shares(out, x) == want,
                    f"{spec.name} [{config.label}]: "
                    f"{'shares storage with' if _shares(out, x) else 'copies'} the input where it should "
                    f"{'be a view' if want else 'copy'}",
                    name="view where legal, copy where not",
                )
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
            shape = [rng.choice([1, 2, 3, 4]) for _ in range(rng.randint(0, 4))]
            # (numel,) -> shape, distinct values so a wrong view shows; then maybe permuted and narrowed
            x = torch.arange(math.prod(shape) * 2, dtype=ctx.dtype, device=ctx.device)[: math.prod(shape)].view(shape)
            if rng.random() < 0.5:
                perm = list(range(len(shape)))
                rng.shuffle(perm)
                x = x.permute(perm)
            if shape and rng.random() < 0.3:
                d = rng.randrange(len(shape))
                x = x.narrow(d, 0, max(1, x.shape[d] - 1))
            target, left = [], x.numel()  # a random factorisation of numel, size-1 dims sprinkled in
            for _ in range(rng.randint(0, 3)):
                k = rng.choice([k for k in range(1, left + 1) if left % k == 0])
                target.append(k)
                left //= k
            target.append(left)
            if rng.random() < 0.3:
                target.insert(rng.randrange(len(target) + 1), 1)
            try:
                want = x.view(target)
            except RuntimeError:
                want = None
            try:
                got = own_view(x, target)
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
            x = make_input((2, 3, 1, 4), layout, g, ctx.dtype).to(ctx.device)
            for s in range(-4, 4):
                for e in range(-4, 4):
                    if s % 4 > e % 4:
                        ctx.expect_raises(
                            ValueError,
                            lambda: own_flatten(x, s, e),
                            match="after",
                            name="flatten start after end raises",
                        )
                        continue
                    out, ref = own_flatten(x, s, e), torch.flatten(x, s, e)
                    ctx.assert_close(out, ref, name="flatten(start, end) equals torch", where=f"{layout} ({s}, {e})")
                    ctx.expect(
                        _shares(out, x) == _shares(ref, x),
                        f"flatten {layout} ({s}, {e}): storage sharing differs from torch.flatten",
                        name="view where legal, copy where not",
                    )
        x = torch.randn(2, 3, device=ctx.device, dtype=ctx.dtype)
        ctx.expect_raises(
            IndexError, lambda: own_flatten(x, 0, 2), match="out of range", name="flatten dim out of range"
        )
        ctx.assert_close(own_flatten(torch.tensor(5.0)), torch.flatten(torch.tensor(5.0)), name="flatten 0-d")
        ctx.expect_raises(ValueError, lambda: own_reshape(x, (-1, -1)), match="only one", name="two -1 raise")
        ctx.expect_raises(ValueError, lambda: own_reshape(x, (4, 2)), match="invalid", name="wrong numel raises")
