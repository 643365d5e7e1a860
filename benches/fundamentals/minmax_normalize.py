"""1.02 Min-max scaling along any dim: (x - min) / (max - min), per slice.

Constant slices (span 0) map to 0, as scikit-learn's ``minmax_scale`` does, not to 0/0 = NaN; a
slice holding a NaN is NaN throughout (its min and max are NaN, so the guard does not fire). Compared,
against ``minmax_numpy`` (float64 NumPy, ``np.divide(..., where=span != 0)``):

* ``naive`` (baseline): ``amin``, ``amax``, ``(x - min) / span`` and a ``torch.where`` guarding
  constant slices: two live full-size temporaries and a three-operand broadcast ``where``.
* ``aminmax``: ``torch.aminmax`` (both statistics "in one pass"; one dim only, so tuples of dims
  fall back to amin + amax), then the scaling of ``fused``.
* ``fused``: ``amin`` + ``amax``, the reciprocal of the span taken on the small reduced tensor (0
  for constant slices), then ``sub`` into the one output buffer and an in-place ``mul_``.

Lesson: min-max scaling is memory-bound: what counts is full-size passes and fresh full-size
buffers, and a "one pass" kernel is no gain when it is slow (along a dim, ``torch.aminmax`` can be
slower than ``amin`` and ``amax`` together). A second live full-size temporary can be fresh memory
from the OS on every call (glibc serves large blocks by mmap above M_MMAP_THRESHOLD, 128 KiB by
default and adjusted dynamically: ``man mallopt``), and its page faults can cost more than the
arithmetic. The reciprocal costs up to 1 ulp (a slice maximum may come out 1 - 2**-24, not 1).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_call
from kernels.tensor import wrong
from kernels.tensor.minmax import dims_of, minmax_aminmax, minmax_fused, minmax_naive, minmax_numpy, minmax_stats


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


def _bench(n: int, cube: tuple[int, int, int]) -> list[MinMaxConfig]:
    """(n, n) and (4n, n) along the last dim, (4n, n) along the first, ``cube`` over its last two dims."""
    return [MinMaxConfig((n, n)), MinMaxConfig((4 * n, n)), MinMaxConfig((4 * n, n), 0), MinMaxConfig(cube, (1, 2))]


@task("fundamentals.minmax_normalize", seed="1.02", title="min-max scaling along any dim")
class MinMaxNormalize(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [  # odd shapes; one, two (unordered, negative) and all dims
            MinMaxConfig((7, 13)),
            MinMaxConfig((7, 13, 5), 1),
            MinMaxConfig((6, 5, 4), (-1, 0)),
            MinMaxConfig((5, 4), None),
            MinMaxConfig((9,), 0),
        ],
        "cpu": _bench(1024, cube=(64, 256, 256)),
        "gpu": _bench(4096, cube=(256, 512, 512)),
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
        replace_call(
            "unguarded_division",
            "no span == 0 guard: 0/0 = NaN on constant slices",
            "fused",
            wrong.minmax_unguarded,
            match="NaN",
        ),
        replace_call("ignores_dim", "scales by the whole tensor's min and max", "fused", wrong.minmax_global),
        Mutant(
            "keepdim_ignored",
            "minmax_stats always keeps the reduced dims",
            {"stats": staticmethod(wrong.minmax_stats_keepdim_ignored)},
            match="keepdim",
        ),
    )
    stats = staticmethod(minmax_stats)  # checked for keepdim; the mutants swap in a wrong one

    def inputs(self, config, device, dtype, seed):
        x = torch.randn(config.shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 3 + 1
        return x.to(device), config.dim

    def reference(self, x, dim):
        return minmax_numpy(x, dim)

    def bytes(self, config, dtype):
        return 2 * math.prod(config.shape) * torch.empty((), dtype=dtype).element_size()  # read x, write the output

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
        impls = [(spec.name, getattr(self, spec.method)) for spec in ctx.implementations(self)]
        for config in ctx.configs:
            x, dim = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            dims = dims_of(dim, x.ndim)
            mixed = x.clone()  # one slice made constant inside random data (and below, a constant tensor)
            mixed[tuple(slice(None) if d in dims else 0 for d in range(x.ndim))] = 7.0
            bounds = (torch.zeros_like(x.amin(dims)), torch.ones_like(x.amin(dims)))
            for name, fn in impls:
                where = f"{name} [{config.label}]"
                for case, data in (("constant input", torch.full_like(x, 2.5)), ("constant slice", mixed)):
                    out = fn(data, dim)()
                    msg = f"{where}: {case} gives NaN (0/0 where max == min); map constant slices to 0"
                    ctx.expect(not bool(out.isnan().any()), msg, name=f"{case}: no NaN")
                    ctx.assert_close(out, self.reference(data, dim), name=f"{case} vs NumPy", where=where)
                out = fn(x, dim)()  # dims honoured: every reduced slice spans exactly [0, 1]
                ctx.assert_close((out.amin(dims), out.amax(dims)), bounds, name="each slice spans [0, 1]", where=where)
            for keepdim in (False, True):
                lo, span = self.stats(x, dim, keepdim)
                ref_lo, ref_hi = torch.amin(x, dims, keepdim=keepdim), torch.amax(x, dims, keepdim=keepdim)
                msg = f"minmax_stats(keepdim={keepdim}) [{config.label}]: {lo.shape}, torch.amin gives {ref_lo.shape}"
                ctx.expect(lo.shape == ref_lo.shape == span.shape, msg, name="stats keepdim shape")
                ctx.assert_close((lo, span), (ref_lo, ref_hi - ref_lo), name="stats values")
        x = torch.randn(3, 4, device=ctx.device, dtype=ctx.dtype)
        for _, fn in impls:
            ctx.expect_raises(IndexError, fn(x, 2), match="out of range", name="dim out of range raises")
            ctx.expect_raises(ValueError, fn(x, (0, -2)), match="twice", name="repeated dim raises")
