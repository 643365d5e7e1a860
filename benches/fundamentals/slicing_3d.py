"""1.09 Slicing 3-D tensors with NumPy's rules: strided, negative and masked slices.

An index is written as in NumPy (``"1:-1:2, ::-1, -4:"``) and NumPy's indexing is the reference:
ints, slices of any step (negative too: torch's own ``x[::-1]`` rejects it), ``...``, an int list
``[0,2,-1]``, ``mask`` (a random 1-D bool mask over that dim), ``mask3d`` (a whole-tensor mask, alone).
NumPy's rule for mixing (NumPy manual, "Advanced indexing"): with an array present, ints are
advanced indices too; all advanced indices broadcast to one result dim, placed where they were if
adjacent, first if a slice separates them: ``x[1, :, [0, 2]]`` is (2, n1), not (n1, 2).

Compared (both execute the same plan, :func:`kernels.tensor.indexing.plan`):

* ``slicing`` (baseline): basic slicing (a view, as NumPy's), ``flip`` for a negative step (torch
  has no negative strides: that part copies), one ``index_select`` over the flattened advanced dims.
* ``gather``: every output element's storage offset as an outer sum of per-dim index vectors
  times strides, then one ``torch.take``: always a copy.
* ``slice_contiguous``: ``slicing`` then ``.contiguous()``, the cost of materialising.

Lesson: a basic slice is a view: microseconds whatever the size, the cost is only deferred to
whoever reads it. A gather writes an int64 offset per element (twice the float32 output) before
reading scattered addresses, so it loses to a strided copy of the view; masks, index lists and
negative steps force copies in torch (NumPy returns a view for ``::-1``; torch has no negative
strides: pytorch/pytorch issues #229 and #59786). Operators: :mod:`kernels.tensor.indexing`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import replace_call
from harness.rejects import expect_rejects
from kernels.tensor import wrong
from kernels.tensor.indexing import index_gather, index_slice, parse
from kernels.tensor.reshape import shares_storage


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


def _bench(small, big):  # x[::2, ::2, ::2] at two sizes (a view), a mask and negative step at the larger (copies)
    return [SliceConfig(small, "::2, ::2, ::2"), SliceConfig(big, "::2, ::2, ::2"), SliceConfig(big, "mask, :, ::-1")]


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
        replace_call("negative_step_flip", "a negative step as flip-then-step", "slicing", wrong.slice_flip_then_step),
        replace_call(
            "advanced_in_order",
            "int and array applied in order, not NumPy's broadcast rule",
            "gather",
            wrong.slice_advanced_in_order,
        ),
        replace_call("gather_ignores_offset", "gathers from a shifted base", "gather", wrong.gather_shifted_base),
        replace_call("slice_copies", "a basic slice that copies", "slicing", wrong.slice_copies, match="view"),
    )
    tiny_specs = (  # the check's index specs, "; "-separated: steps of every sign, ints, masks, lists, empty, clipped
        "1:-1:2, ::-1, -4:; -2, :, ::3; ::-2, 5:1:-1, -1; mask, 1:, ::-1; :, mask, -1; [0,2,-1], :, ::-2; "
        "1, :, [0,-1,3]; :, 2, [4,1]; ..., 3:3; mask3d; -7, -9:, 10:-100:-3; -2, ..."
    ).split("; ")
    sizes = {
        "tiny": [SliceConfig((7, 9, 11), s) for s in tiny_specs],
        "cpu": _bench((64, 64, 64), (256, 256, 256)),
        "gpu": _bench((256, 256, 256), (1024, 1024, 256)),
    }

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(config.shape, generator=g, dtype=dtype)
        return x.to(device), parse(config.spec, config.shape, g, device)

    def reference(self, x, index):
        np_index = tuple(i.cpu().numpy() if isinstance(i, torch.Tensor) else i for i in index)
        out = x.cpu().numpy()[np_index if len(np_index) != 1 else np_index[0]]
        return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)

    def prepare(self, ctx, impl, config):
        p = super().prepare(ctx, impl, config)  # bytes: none for a view (it moves nothing), set here for a copy
        x, index = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
        out = index_slice(x, index)
        if impl != "slicing" or not shares_storage(out, x):
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
                views = {"slicing": True, "slice_contiguous": index_slice(x, index).is_contiguous()}
                want = view and out.numel() > 0 and views.get(spec.name, False)
                shares = out.numel() > 0 and shares_storage(out, x)
                got, allowed = ("a view" if shares else "a copy"), ("a view" if want else "only a copy")
                msg = f"{spec.name} [{config.label}]: {got} where NumPy semantics and torch allow {allowed}"
                ctx.expect(shares == want, msg, name="basic slices are views, the rest copies")
        x = torch.randn(3, 4, 5, device=ctx.device, dtype=ctx.dtype)
        bad = [  # (error, inputs, message part, check name)
            (ValueError, (x, (slice(None, None, 0),)), "step", "step 0 raises"),
            (IndexError, (x, (0, 4)), "out of bounds", "index out of range raises"),
            (IndexError, (x, (0, 0, 0, 0)), "too many", "too many indices raise"),
            (IndexError, (x, (x.new_ones(4, dtype=torch.bool),)), "does not match", "wrong mask length raises"),
        ]
        expect_rejects(ctx, self, bad)
