"""1.02 Min-max scaling along any dim: (x - min) / (max - min), per slice.

Compared, against a NumPy reference (float64, ``np.divide(..., where=span > 0)``):

* ``naive`` (baseline): the textbook formula: ``amin`` and ``amax``, then
  ``(x - min) / span`` and a ``torch.where`` guarding constant slices: two live
  full-size temporaries and a three-operand broadcast ``where``.
* ``aminmax``: ``torch.aminmax`` (both statistics "in one pass"; it takes one dim, so
  tuples of dims fall back to amin + amax), then the scaling of ``fused``.
* ``fused``: ``amin`` + ``amax``; the reciprocal of the span taken on the small reduced
  tensor (0 for constant slices), then ``sub`` into the one output buffer and an
  in-place ``mul_``: no full-size temporary, no full-size ``where``.

Constant slices (span 0) map to 0, as scikit-learn's ``minmax_scale`` does; without
the guard they become 0/0 = NaN. ``dim`` is an int, a tuple of ints (any order,
negative allowed) or None (the whole tensor); :func:`minmax_stats` returns the
statistics with ``keepdim`` honoured like ``torch.amin``.

Lesson: min-max scaling is memory-bound, so what counts is full-size passes and fresh
full-size buffers, and a "one pass" kernel is no gain when that kernel is slow.
Measured on this shared 2-core CPU VM, one thread (OMP_NUM_THREADS=1: with two, the
other jobs' load made OpenMP barrier waits dominate), float32, medians of ``drills
bench``; repeated runs differed by up to 2-3x, so read the ratios. GB/s = (read x +
write out) / time. 1024x1024 dim=-1: naive 17.9 ms (0.47 GB/s), aminmax 7.0 ms, fused
0.81 ms (10.3 GB/s); 4096x1024 dim=-1: 70 / 24 / 7.9 ms (fused 4.2 GB/s); dim=0:
58 / 45 / 15 ms; 64x256x256 dims (1, 2): 70 / 10 / 8.6 ms. The two causes, timed alone
at 1024x1024: ``torch.aminmax`` along a dim takes 2.3-10 ms where ``amin`` takes
0.06-0.2 ms; and ``(x - lo) / span`` takes 3.5-8 ms where ``torch.sub(x, lo).div_(span)``
takes 0.2 ms: a second live 4 MB temporary is fresh memory from the OS on every call,
and its page faults cost 30x the arithmetic. Multiplying by the reciprocal costs up to
1 ulp (a slice maximum may come out 1 - 2**-24 rather than exactly 1).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from harness import Operator, impl, task


@dataclasses.dataclass(frozen=True)
class MinMaxConfig:
    """Scale a tensor of ``shape`` to [0, 1] along ``dim``."""

    shape: tuple[int, ...]
    """shape of x (elements)"""
    dim: int | tuple[int, ...] | None = -1
    """reduced dimension(s); None reduces over the whole tensor"""

    @property
    def label(self) -> str:
        return "x".join(map(str, self.shape)) + f" dim={self.dim}"


def _dims(dim: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """``dim`` as a sorted tuple of non-negative dims; None means every dim.

    Raises:
        IndexError: a dim out of range. ValueError: a dim given twice.
    """
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise IndexError(f"minmax: dim {d} out of range for a {ndim}-d tensor (valid {-ndim}..{ndim - 1})")
        out.append(d % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"minmax: dim {dim} names a dimension twice")
    return tuple(sorted(out))


def minmax_stats(x: torch.Tensor, dim=None, keepdim: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(min, max - min) of ``x`` over ``dim``; shapes as ``torch.amin(x, dim, keepdim)``."""
    dims = _dims(dim, x.ndim)
    lo, hi = x.amin(dims, keepdim=keepdim), x.amax(dims, keepdim=keepdim)
    return lo, hi - lo


def _scale(x: torch.Tensor, lo: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    # reciprocal on the reduced tensor: one small division instead of numel large ones;
    # 0 where the slice is constant, so (x - lo) * 0 = 0 and no NaN appears, and no
    # full-size torch.where is needed
    inv = torch.where(span > 0, 1.0 / span, torch.zeros_like(span))
    return torch.sub(x, lo).mul_(inv)  # kept dims broadcast back; one output buffer


def minmax_naive(x: torch.Tensor, dim=None) -> torch.Tensor:
    dims = _dims(dim, x.ndim)
    lo, hi = x.amin(dims, keepdim=True), x.amax(dims, keepdim=True)  # kept dims broadcast back
    span = hi - lo
    return torch.where(span == 0, torch.zeros_like(x), (x - lo) / span)


def minmax_aminmax(x: torch.Tensor, dim=None) -> torch.Tensor:
    dims = _dims(dim, x.ndim)
    if len(dims) == 1 or len(dims) == x.ndim:  # aminmax takes one dim or None (all)
        lo, hi = torch.aminmax(x, dim=dims[0] if len(dims) == 1 else None, keepdim=True)  # one pass
    else:
        lo, hi = x.amin(dims, keepdim=True), x.amax(dims, keepdim=True)
    return _scale(x, lo, hi - lo)


def minmax_fused(x: torch.Tensor, dim=None) -> torch.Tensor:
    lo, span = minmax_stats(x, dim, keepdim=True)
    return _scale(x, lo, span)


@task("fundamentals.minmax_normalize", seed="1.02", title="min-max scaling along any dim")
class MinMaxNormalize(Operator):
    __doc__ = __doc__
    sizes = {
        # odd shapes; one, two (unordered, negative) and all dims
        "tiny": [
            MinMaxConfig((7, 13)),
            MinMaxConfig((7, 13, 5), 1),
            MinMaxConfig((6, 5, 4), (-1, 0)),
            MinMaxConfig((5, 4), None),
            MinMaxConfig((9,), 0),
        ],
        "cpu": [
            MinMaxConfig((1024, 1024)),
            MinMaxConfig((4096, 1024)),
            MinMaxConfig((4096, 1024), 0),
            MinMaxConfig((64, 256, 256), (1, 2)),
        ],
        "gpu": [
            MinMaxConfig((4096, 4096)),
            MinMaxConfig((16384, 4096)),
            MinMaxConfig((16384, 4096), 0),
            MinMaxConfig((256, 512, 512), (1, 2)),
        ],
    }
    #: statistics function checked for keepdim; a test swaps in a wrong one
    stats = staticmethod(minmax_stats)

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=g, dtype=dtype) * 3 + 1
        return x.to(device), config.dim

    def reference(self, x, dim):
        a = x.detach().cpu().double().numpy()
        axis = _dims(dim, a.ndim)
        lo = a.min(axis=axis, keepdims=True)
        span = a.max(axis=axis, keepdims=True) - lo
        out = np.divide(a - lo, span, out=np.zeros_like(a), where=span > 0)
        return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)

    def bytes(self, config, dtype):
        el = torch.empty((), dtype=dtype).element_size()
        return 2 * el * int(np.prod(config.shape))  # read x once, write the output once

    @impl(baseline=True)
    def naive(self, x, dim):
        return lambda: minmax_naive(x, dim)

    @impl
    def aminmax(self, x, dim):
        return lambda: minmax_aminmax(x, dim)

    @impl
    def fused(self, x, dim):
        return lambda: minmax_fused(x, dim)

    def extra_checks(self, ctx):
        impls = ctx.implementations(self)
        for config in ctx.configs:
            x, dim = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            dims = _dims(dim, x.ndim)
            # a constant tensor, and one slice made constant inside random data
            const = torch.full_like(x, 2.5)
            mixed = x.clone()
            mixed[tuple(slice(None) if d in dims else 0 for d in range(x.ndim))] = 7.0
            for spec in impls:
                for name, data in (("constant input", const), ("constant slice", mixed)):
                    out = getattr(self, spec.method)(data, dim)()
                    ctx.expect(
                        not bool(out.isnan().any()),
                        f"{spec.name} [{config.label}]: {name} gives NaN "
                        "(0/0 where max == min); map constant slices to 0",
                        name=f"{name}: no NaN",
                    )
                    ctx.assert_close(
                        out, self.reference(data, dim), name=f"{name} vs NumPy", where=f"{spec.name} [{config.label}]"
                    )
                # dims honoured: every reduced slice spans exactly [0, 1]
                out = getattr(self, spec.method)(x, dim)()
                ctx.assert_close(
                    (out.amin(dims), out.amax(dims)),
                    (torch.zeros_like(x.amin(dims)), torch.ones_like(x.amin(dims))),
                    name="each slice spans [0, 1]",
                    where=f"{spec.name} [{config.label}]",
                )
            for keepdim in (False, True):
                lo, span = self.stats(x, dim, keepdim)
                ref = (torch.amin(x, dims, keepdim=keepdim), torch.amax(x, dims, keepdim=keepdim))
                ctx.expect(
                    lo.shape == ref[0].shape and span.shape == ref[0].shape,
                    f"minmax_stats(keepdim={keepdim}) [{config.label}]: shape {tuple(lo.shape)}, "
                    f"torch.amin gives {tuple(ref[0].shape)}",
                    name="stats keepdim shape",
                )
                ctx.assert_close((lo, span), (ref[0], ref[1] - ref[0]), name="stats values")
        x = torch.randn(3, 4, device=ctx.device, dtype=ctx.dtype)
        for spec in impls:
            fn = getattr(self, spec.method)
            ctx.expect_raises(IndexError, fn(x, 2), match="out of range", name="dim out of range raises")
            ctx.expect_raises(ValueError, fn(x, (0, -2)), match="twice", name="repeated dim raises")
