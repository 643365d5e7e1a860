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
view for ``::-1``, torch cannot: it has no negative strides). Measured on this shared
2-core CPU VM, one thread (OMP_NUM_THREADS=1), float32, medians: 64x64x64[::2,::2,::2]:
slicing 13 us, gather 0.56 ms, slice_contiguous 0.13 ms; 256x256x256[::2,::2,::2] (8 MB
out): 36 us, 34 ms, 18 ms; 256x256x256[mask,:,::-1] (~32 MB out, both parts copy):
220 ms, 279 ms, 217 ms.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from harness import Operator, impl, task


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


def parse(spec: str, shape, g: torch.Generator, device) -> tuple:
    """The index tuple of ``spec``; masks are drawn from ``g`` (at least one True each)."""
    parts = _split(spec)
    if "..." in parts:  # expand to the missing full slices
        i = parts.index("...")
        parts[i : i + 1] = [":"] * (len(shape) - len(parts) + 1)
    out = []
    for d, p in enumerate(parts):
        if p == "mask3d":
            m = torch.rand(shape, generator=g) < 0.4
        elif p == "mask":
            m = torch.rand(shape[d], generator=g) < 0.5
        elif p.startswith("["):
            out.append(torch.tensor([int(v) for v in p[1:-1].split(",")], device=device))
            continue
        elif ":" in p:
            out.append(slice(*[int(v) if v.strip() else None for v in p.split(":")]))
            continue
        else:
            out.append(int(p))
            continue
        m.view(-1)[0] = True  # (numel,) view: at least one element selected
        out.append(m.to(device))
    return tuple(out)


def _split(spec: str) -> list[str]:
    """Split at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in spec:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return parts + [cur.strip()]


def plan(index: tuple, shape) -> tuple[list, list[int], list[torch.Tensor], bool]:
    """Resolve ``index`` for ``shape`` into per-dim ranges and one advanced group.

    Returns (basic, adv_dims, adv_index, adjacent): ``basic[d]`` is ``range(start, stop,
    step)`` for a sliced dim, an int for a dropped dim (no arrays present), or None for
    a dim in the advanced group; ``adv_index`` are the group's int64 index vectors, all
    of one length k; ``adjacent`` says whether the k dim stays in place (else it goes first).

    Raises:
        IndexError: too many indices, an index out of bounds, a mask of the wrong length.
        ValueError: a slice step of zero.
    """
    if (
        len(index) == 1
        and isinstance(index[0], torch.Tensor)
        and index[0].dtype == torch.bool
        and index[0].ndim == len(shape)
    ):  # a whole-tensor mask: one array per dim
        if tuple(index[0].shape) != tuple(shape):
            raise IndexError(
                f"boolean mask of shape {tuple(index[0].shape)} does not match tensor shape {tuple(shape)}"
            )
        return [None] * len(shape), list(range(len(shape))), list(index[0].nonzero().unbind(1)), True
    if len(index) > len(shape):
        raise IndexError(f"too many indices: {len(index)} for a {len(shape)}-d tensor")
    index = tuple(index) + (slice(None),) * (len(shape) - len(index))
    has_array = any(isinstance(i, torch.Tensor) for i in index)
    basic, adv_dims, adv = [], [], []
    for d, (i, n) in enumerate(zip(index, shape)):
        if isinstance(i, slice):
            if i.step == 0:
                raise ValueError("slice step cannot be zero")
            basic.append(range(*i.indices(n)))
            continue
        if isinstance(i, torch.Tensor):
            if i.dtype == torch.bool:
                if i.shape != (n,):
                    raise IndexError(f"boolean index of length {i.numel()} does not match dim {d} of size {n}")
                i = i.nonzero().squeeze(1)
            if bool(((i < -n) | (i >= n)).any()):
                raise IndexError(f"index {i.tolist()} out of bounds for dim {d} with size {n}")
            i = i % n if n else i  # negative counts from the end
        elif not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for dim {d} with size {n}")
        else:
            i = i % n
        if has_array:  # NumPy: next to an array, an int is an advanced index too
            basic.append(None)
            adv_dims.append(d)
            adv.append(i)
        else:
            basic.append(i)
    if adv:
        k = max(a.numel() if isinstance(a, torch.Tensor) else 1 for a in adv)
        dev = next(a.device for a in adv if isinstance(a, torch.Tensor))
        adv = [
            a.long() if isinstance(a, torch.Tensor) else torch.full((k,), a, dtype=torch.long, device=dev) for a in adv
        ]  # ints broadcast to (k,)
    adjacent = adv_dims == list(range(adv_dims[0], adv_dims[0] + len(adv_dims))) if adv_dims else True
    return basic, adv_dims, adv, adjacent


def index_slice(x: torch.Tensor, index: tuple) -> torch.Tensor:
    """Views for slices with a positive step; flip for a negative one; index_select for arrays."""
    basic, adv_dims, adv, adjacent = plan(index, x.shape)
    y, dims = x, []  # dims: positions in y of the original dims that are kept
    for d, r in enumerate(basic):
        pos = len(dims)
        if isinstance(r, int):
            y = y.select(pos, r)  # drops the dim
            continue
        dims.append(d)
        if r is None:
            continue
        lead = (slice(None),) * pos
        if r.step > 0 or len(r) == 0:  # a view; start/stop are already in 0..n
            y = y[lead + (slice(r.start, r.stop, r.step),)] if len(r) else y.narrow(pos, 0, 0)
        else:  # the same elements in increasing order, then reversed: flip copies
            y = y[lead + (slice(r[-1], r.start + 1, -r.step),)].flip(pos)
    if not adv:
        return y
    group = [dims.index(d) for d in adv_dims]
    y = y.movedim(group, list(range(len(group))))  # (g0, g1, ..., rest)
    sizes = y.shape[: len(group)]
    lin = sum(a * math.prod(sizes[j + 1 :]) for j, a in enumerate(adv))  # row-major position in the group
    y = y.flatten(0, len(group) - 1).index_select(0, lin)  # (k, rest...)
    return y.movedim(0, group[0]) if adjacent else y  # (..., k, ...) where the group was, else (k, rest...)


def index_gather(x: torch.Tensor, index: tuple) -> torch.Tensor:
    """One ``torch.take`` from the flat storage at offsets built from the strides."""
    basic, adv_dims, adv, adjacent = plan(index, x.shape)
    base = x.storage_offset() + sum(r * x.stride(d) for d, r in enumerate(basic) if isinstance(r, int))
    vecs = []  # one 1-D offset vector per output dim, in output order
    for d, r in enumerate(basic):
        if isinstance(r, range):
            vecs.append(torch.tensor(r, dtype=torch.long, device=x.device) * x.stride(d))
        elif r is None and d == adv_dims[0]:  # the advanced group's one output dim
            vecs.append(sum(a * x.stride(ad) for ad, a in zip(adv_dims, adv)))
    if adv and not adjacent:  # the group's dim goes first
        i = sum(1 for d, r in enumerate(basic) if isinstance(r, range) and d < adv_dims[0])
        vecs.insert(0, vecs.pop(i))
    offsets = torch.full((), base, dtype=torch.long, device=x.device)
    for j, v in enumerate(vecs):  # outer sum: dim j of the output varies along axis j
        offsets = offsets.unsqueeze(-1) + v.view(*([1] * j), -1)  # (n0, ..., nj)
    storage = x.as_strided((x.untyped_storage().nbytes() // x.element_size(),), (1,), 0)  # flat storage, 1-D
    return torch.take(storage, offsets)


@task("fundamentals.slicing_3d", seed="1.09", title="slicing 3D tensors")
class Slicing3D(Operator):
    __doc__ = __doc__
    allow_alias = True  # basic slices are views, as NumPy's; checked explicitly below
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
