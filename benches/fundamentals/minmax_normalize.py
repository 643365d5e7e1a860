"""1.02 Min-max scaling along any dim: (x - min) / (max - min), per slice.

Compared, against a NumPy reference (float64, ``np.divide(..., where=span != 0)``):

* ``naive`` (baseline): the textbook formula: ``amin`` and ``amax``, then
  ``(x - min) / span`` and a ``torch.where`` guarding constant slices: two live
  full-size temporaries and a three-operand broadcast ``where``.
* ``aminmax``: ``torch.aminmax`` (both statistics "in one pass"; it takes one dim, so
  tuples of dims fall back to amin + amax), then the scaling of ``fused``.
* ``fused``: ``amin`` + ``amax``; the reciprocal of the span taken on the small reduced
  tensor (0 for constant slices), then ``sub`` into the one output buffer and an
  in-place ``mul_``: no full-size temporary, no full-size ``where``.

Constant slices (span 0) map to 0, as scikit-learn's ``minmax_scale`` does; without
the guard they become 0/0 = NaN. A slice holding a NaN becomes NaN throughout: its min and
max are NaN (``torch.amin`` and ``np.min`` propagate it), so the guard does not fire.
``dim`` is an int, a tuple of ints (any order, negative allowed) or None (the whole
tensor); :func:`minmax_stats` returns the statistics with ``keepdim`` honoured like ``torch.amin``.

Lesson: min-max scaling is memory-bound, so what counts is full-size passes and fresh
full-size buffers, and a "one pass" kernel is no gain when that kernel is slow (along a dim,
``torch.aminmax`` can be slower than ``amin`` and ``amax`` together). A second live
full-size temporary can be fresh memory from the OS on every call (glibc serves large blocks
by mmap above M_MMAP_THRESHOLD, 128 KiB by default and adjusted dynamically: ``man
mallopt``), and its page faults can cost more than the arithmetic. Multiplying by the
reciprocal costs up to 1 ulp (a slice maximum may come out 1 - 2**-24 rather than exactly
1). The operators live in :mod:`kernels.tensor.minmax`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_impl
from kernels.tensor.minmax import dims_of, minmax_aminmax, minmax_fused, minmax_naive, minmax_stats


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


# -- wrong versions, declared as mutants below ------------------------------------------
def _unguarded(self, x, dim):
    """The textbook formula without the span == 0 guard: 0/0 = NaN on constant slices."""
    dims = tuple(range(x.ndim)) if dim is None else dim
    return lambda: (x - x.amin(dims, keepdim=True)) / (x.amax(dims, keepdim=True) - x.amin(dims, keepdim=True))


def _global_minmax(self, x, dim):
    """Ignores dim: scales by the whole tensor's min and max."""
    return lambda: (x - x.min()) / (x.max() - x.min())


def _keepdim_ignored(x, dim=None, keepdim=False):
    return minmax_stats(x, dim, keepdim=True)  # always keeps the reduced dims


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
    claims = (
        speedup(
            "fused",
            over="naive",
            at_least=2,
            text="reciprocal on the reduced tensor, one output buffer: >= 2x the textbook formula over dims (1, 2)",
        ),
        time_ratio(
            "fused",
            to="aminmax",
            at_most=1.0,
            config="dim=-1",
            text="amin + amax no slower than torch.aminmax's single pass along the last dim",
        ),
    )
    mutants = (
        replace_impl(
            "unguarded_division", "no span == 0 guard: 0/0 = NaN on constant slices", "fused", _unguarded, match="NaN"
        ),
        replace_impl("ignores_dim", "scales by the whole tensor's min and max", "fused", _global_minmax),
        Mutant(
            "keepdim_ignored",
            "minmax_stats always keeps the reduced dims",
            {"stats": staticmethod(_keepdim_ignored)},
            match="keepdim",
        ),
    )
    #: statistics function checked for keepdim; the mutants swap in a wrong one
    stats = staticmethod(minmax_stats)

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=g, dtype=dtype) * 3 + 1
        return x.to(device), config.dim

    def reference(self, x, dim):
        a = x.detach().cpu().double().numpy()
        axis = dims_of(dim, a.ndim)
        lo = a.min(axis=axis, keepdims=True)
        span = a.max(axis=axis, keepdims=True) - lo
        # != 0, not > 0: a NaN span (a NaN in the slice) must divide to NaN, as the operators do
        out = np.divide(a - lo, span, out=np.zeros_like(a), where=span != 0)
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
            dims = dims_of(dim, x.ndim)
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
