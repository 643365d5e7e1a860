"""1.09 Slicing 3-D tensors with NumPy's rules: strided, negative and masked slices.

An index is written as in NumPy (``"1:-1:2, ::-1, -4:"``); the check compares every
implementation with NumPy indexing the same data (``x.numpy()[index]``). Parts: ints
(negative count from the end), slices with any step (negative too, which torch's own
``x[::-1]`` rejects), ``...``, an int list ``[0,2,-1]``, ``mask`` (a random 1-D bool
mask over that dim) and ``mask3d`` (a bool mask of the whole tensor, alone).

NumPy's rule for mixing (NumPy manual, "Advanced indexing"): once an array is present,
ints are advanced indices too; all advanced indices broadcast to one result dim,
which sits where they were when they are adjacent and goes first when a slice
separates them. So ``x[1, :, [0, 2]]`` has shape (2, n1), not (n1, 2).

Compared (both execute the same plan, :func:`plan`):

* ``slicing`` (baseline): basic slicing (a view, as NumPy's), ``flip`` for a negative
  step (torch has no negative strides, so that part copies), and one ``index_select``
  over the flattened advanced dims.
* ``gather``: every output element's storage offset as an outer sum of per-dim index
  vectors times strides, then one ``torch.take``: always a copy.
* ``slice_contiguous``: ``slicing`` then ``.contiguous()``, the cost of materialising.

Lesson: a basic slice is a view: microseconds whatever the size, the cost is only
deferred to whoever reads it. A gather writes an int64 offset per element (twice the
float32 output) before reading scattered addresses, so it loses to a strided copy of
the view; masks, index lists and negative steps force copies in torch (NumPy returns a
view for ``::-1``, torch cannot: it has no negative strides: pytorch/pytorch issues #229 and #59786). The
operators live in :mod:`kernels.tensor.indexing`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import replace_impl
from kernels.tensor.indexing import index_gather, index_slice, parse


@dataclasses.dataclass(frozen=True)
class SliceConfig:
    """Index a tensor of ``shape`` with ``spec`` (NumPy syntax)."""

    shape: tuple[int, int, int]
    """shape of x (elements)"""
    spec: str
    """comma-separated parts: int, a:b:c, ..., [i,j,...], mask, mask3d"""

    @property
    def label(self) -> str:
        return f"{'x'.join(map(str, self.shape))}[{self.spec.replace(' ', '')}]"


# -- wrong versions, declared as mutants below ------------------------------------------
def _flip_then_step(self, x, index):
    """Reverses the whole dim and then steps: right only when the slice starts at the end."""

    def run():
        parts, y = [], x
        for i in index:
            if isinstance(i, slice) and (i.step or 1) < 0:
                y = y.flip(len(parts))
                i = slice(None, None, -i.step)
            if not isinstance(i, (slice, int)):
                return index_slice(x, index)
            parts.append(i)
        return y[tuple(parts)]

    return run


def _in_order(self, x, index):
    """Selects the int first, then indexes the array: (n1, k) where NumPy gives (k, n1)."""

    def run():
        ints = [d for d, i in enumerate(index) if isinstance(i, int)]
        arrays = [d for d, i in enumerate(index) if isinstance(i, torch.Tensor)]
        if ints and arrays and abs(ints[0] - arrays[0]) > 1:
            y = x.select(ints[0], index[ints[0]])
            return y.index_select(arrays[0] - (ints[0] < arrays[0]), index[arrays[0]] % x.shape[arrays[0]])
        return index_slice(x, index)

    return run


@task("fundamentals.slicing_3d", seed="1.09", title="slicing 3D tensors")
class Slicing3D(Operator):
    __doc__ = __doc__
    allow_alias = True  # basic slices are views, as NumPy's; checked explicitly below
    claims = (
        speedup(
            "slicing",
            over="slice_contiguous",
            at_least=10,
            config="[::2,::2,::2]",
            text="x[::2, ::2, ::2] as a view >= 10x materialising it (largest size)",
        ),
        time_ratio(
            "slice_contiguous",
            to="gather",
            at_most=1.0,
            config="[::2,::2,::2]",
            text="a strided copy of the view no slower than the hand-built gather (int64 offsets)",
        ),
    )
    mutants = (
        replace_impl("negative_step_flip", "a negative step as flip-then-step", "slicing", _flip_then_step),
        replace_impl(
            "advanced_in_order", "int and array applied in order, not NumPy's broadcast rule", "gather", _in_order
        ),
        replace_impl(
            "gather_ignores_offset",
            "gathers from a shifted base",
            "gather",
            lambda self, x, index: lambda: index_gather(x[1:], index),
        ),
        replace_impl(
            "slice_copies",
            "a basic slice that copies",
            "slicing",
            lambda self, x, index: lambda: index_slice(x, index).clone(),
            match="view",
        ),
    )
    sizes = {
        "tiny": [
            SliceConfig((7, 9, 11), s)
            for s in (
                "1:-1:2, ::-1, -4:",
                "-2, :, ::3",
                "::-2, 5:1:-1, -1",
                "mask, 1:, ::-1",
                ":, mask, -1",
                "[0,2,-1], :, ::-2",
                "1, :, [0,-1,3]",
                ":, 2, [4,1]",
                "..., 3:3",
                "mask3d",
                "-7, -9:, 10:-100:-3",
                "-2, ...",
            )
        ],
        "cpu": [
            SliceConfig((64, 64, 64), "::2, ::2, ::2"),
            SliceConfig((256, 256, 256), "::2, ::2, ::2"),
            SliceConfig((256, 256, 256), "mask, :, ::-1"),
        ],
        "gpu": [
            SliceConfig((256, 256, 256), "::2, ::2, ::2"),
            SliceConfig((1024, 1024, 256), "::2, ::2, ::2"),
            SliceConfig((1024, 1024, 256), "mask, :, ::-1"),
        ],
    }

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=g, dtype=dtype)
        return x.to(device), parse(config.spec, config.shape, g, device)

    def reference(self, x, index):
        np_index = tuple(i.cpu().numpy() if isinstance(i, torch.Tensor) else i for i in index)
        out = x.cpu().numpy()[np_index if len(np_index) != 1 else np_index[0]]
        return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)

    def bytes(self, config, dtype):
        return None  # set per implementation in prepare (a view moves nothing)

    def prepare(self, ctx, impl, config):
        p = super().prepare(ctx, impl, config)
        x, index = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
        out = index_slice(x, index)
        if impl != "slicing" or out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr():
            p.bytes = 2 * out.numel() * out.element_size()  # a copy: each output element read and written
        return p

    @impl(baseline=True)
    def slicing(self, x, index):
        return lambda: index_slice(x, index)

    @impl
    def gather(self, x, index):
        return lambda: index_gather(x, index)

    @impl
    def slice_contiguous(self, x, index):
        return lambda: index_slice(x, index).contiguous()

    def extra_checks(self, ctx):
        for config in ctx.configs:
            x, index = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            view = all(isinstance(i, int) or (isinstance(i, slice) and (i.step or 1) > 0) for i in index)
            for spec in ctx.implementations(self):
                out = getattr(self, spec.method)(x, index)()
                # .contiguous() of a view that is contiguous already returns the view itself
                want = (
                    view
                    and out.numel() > 0
                    and (
                        spec.name == "slicing"
                        or (spec.name == "slice_contiguous" and index_slice(x, index).is_contiguous())
                    )
                )
                shares = out.numel() > 0 and out.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
                ctx.expect(
                    shares == want,
                    f"{spec.name} [{config.label}]: {'a view' if shares else 'a copy'} where "
                    f"NumPy semantics and torch allow {'a view' if want else 'only a copy'}",
                    name="basic slices are views, the rest copies",
                )
        x = torch.randn(3, 4, 5, device=ctx.device, dtype=ctx.dtype)
        for spec in ctx.implementations(self):
            fn = getattr(self, spec.method)
            ctx.expect_raises(ValueError, fn(x, (slice(None, None, 0),)), match="step", name="step 0 raises")
            ctx.expect_raises(IndexError, fn(x, (0, 4)), match="out of bounds", name="index out of range raises")
            ctx.expect_raises(IndexError, fn(x, (0, 0, 0, 0)), match="too many", name="too many indices raise")
            ctx.expect_raises(
                IndexError,
                fn(x, (torch.ones(4, dtype=torch.bool, device=ctx.device),)),
                match="does not match",
                name="wrong mask length raises",
            )
