"""m1 A tensor class with stride-based slicing.

``kernels.tensor.strided.StridedTensor`` is nothing but (flat storage, shape, strides, offset):
element [i0, ..., ik] lives at ``storage[offset + sum(i_d * s_d)]``, and every view op
(indexing with ints, slices, None and ``...``, transpose, permute, flip) only computes a
new (shape, strides, offset) over the same storage.

Check, on randomly generated index expressions (a seeded ``random.Random`` in the check;
the property-based hypothesis tests live in tests/kernels/test_strided.py): 600 chains of
"permute the base tensor, index it with a random expression, transpose two dims", over
storages with a non-zero base offset. Each expression mixes ints (negative ones too),
slices with random start/stop/step, None and Ellipsis; a third of the slices step
backwards.

* positive steps: the view's shape, strides, storage offset and values equal those of
  the torch view built by the same ops on a torch tensor over the same storage, and
  the view shares that storage (no copy);
* every chain, negative steps included (torch refuses those, "step must be greater than
  zero", which the check confirms): shape, strides and offset equal the NumPy view built
  by the same ops (NumPy allows negative strides; strides in elements; the stride of a
  size-1 dim is never used to address anything, and there torch's convention, which the
  class follows, differs from NumPy's 0, so those are not compared), and values equal
  torch's values taken dim by dim (``index_select`` of each slice's indices);
* ``view(-1)`` raises RuntimeError exactly where torch's does, and otherwise gives
  torch's strides;
* an out-of-range int raises IndexError whose message names the index, the dimension
  and its size, word for word as torch's; too many indices raise IndexError too.

Bench: indexing overhead: applying the same 64 positive-step index expressions with
``torch.Tensor.__getitem__`` (baseline: C++ view creation, ~1-2 us each) and with
``StridedTensor.__getitem__`` (Python arithmetic on tuples).

Lesson (2-core CPU VM shared with other jobs, OMP_NUM_THREADS=1, ``drills bench --task
m1.strided_tensor``; medians, IQRs 25-500% under the load): 64 expressions on a 64x64
tensor: torch 0.35 ms (5.5 us per view), StridedTensor 1.5 ms (24 us); on a 16^4 tensor:
0.17 ms (2.7 us) vs 0.67 ms (10.5 us). A view is a few integer multiplications; the cost
of indexing is bookkeeping either way: torch parses the Python index and allocates a new
TensorImpl with autograd metadata for every view, which is why a pure-Python class that
does the same arithmetic on tuples is only ~4x slower. The layout rules are the lesson:
an unsqueezed dim takes stride size*stride of the next dim, out-of-range slice bounds
clamp while out-of-range ints raise, and negative steps are just negative strides (NumPy
has them; torch does not, so ``flip`` copies there).
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch

from harness import Operator, impl, task
from kernels.tensor.strided import StridedTensor


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """``n_exprs`` random index expressions on a tensor of rank ``rank``."""

    rank: int
    """dimensions of the indexed tensor"""
    size: int
    """length of every dimension (elements)"""
    n_exprs: int = 64
    """index expressions applied per timed call"""

    def label(self) -> str:
        return f"rank={self.rank},size={self.size},exprs={self.n_exprs}"


def random_index(rng: random.Random, shape: tuple[int, ...], *, negative: bool = True) -> tuple:
    """A random index expression for ``shape``: per dim an int, a slice or nothing, with
    Nones sprinkled in and sometimes an Ellipsis standing for some trailing dims."""
    items: list = []
    ndim = len(shape)
    n_used = rng.randint(0, ndim)
    for d in range(n_used):
        if rng.random() < 0.15:
            items.append(None)
        n = shape[d]
        r = rng.random()
        if r < 0.3 and n > 0:
            items.append(rng.randint(-n, n - 1))
        elif r < 0.4:
            items.append(slice(None))
        else:
            step = rng.choice([1, 1, 2, 3]) * (-1 if negative and rng.random() < 1 / 3 else 1)
            pick = lambda: rng.choice([None, rng.randint(-n - 2, n + 2)])  # out of range clamps
            items.append(slice(pick(), pick(), step))
    if n_used < ndim and rng.random() < 0.3:
        items.append(Ellipsis)
        if rng.random() < 0.5:
            items.append(None)
    return tuple(items)


def _has_negative_step(index: tuple) -> bool:
    return any(isinstance(it, slice) and it.step is not None and it.step < 0 for it in index)


def torch_values(t: torch.Tensor, index: tuple) -> torch.Tensor:
    """Values of ``t[index]`` built dim by dim with torch ops; negative-step slices become
    ``index_select`` of their indices (a copy), everything else stays a view."""
    items = list(index)
    if Ellipsis in items:
        k = items.index(Ellipsis)
        consumed = sum(isinstance(it, (int, slice)) for it in items)
        items[k : k + 1] = [slice(None)] * (t.dim() - consumed)
    d = 0
    for it in items:
        if it is None:
            t = t.unsqueeze(d)
            d += 1
        elif isinstance(it, int):
            t = t.select(d, it)
        else:
            idx = list(range(*it.indices(t.shape[d])))
            t = t.index_select(d, torch.tensor(idx, dtype=torch.long, device=t.device))
            d += 1
    return t


def _numpy_layout(a: np.ndarray, base: np.ndarray) -> tuple:
    """(shape, strides in elements, offset in elements) of NumPy view ``a`` of ``base``."""
    item = a.itemsize
    offset = (a.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return tuple(a.shape), tuple(s // item for s in a.strides), offset


def _addressing(shape, strides, offset) -> tuple:
    """The part of a layout that decides which element is read: strides of size-1 dims are
    never used (torch gives an unsqueezed dim size*stride of the next dim, NumPy 0), and an
    empty view reads nothing at all."""
    if 0 in shape:
        return tuple(shape), None, None
    return tuple(shape), tuple(s if n > 1 else None for n, s in zip(shape, strides)), offset


@task("m1.strided_tensor", seed="m1", title="a Tensor class with stride-based slicing")
class StridedTensorTask(Operator):
    __doc__ = __doc__
    allow_alias = True  # views of the input are the point
    sizes = {
        "tiny": [IndexConfig(rank=3, size=5, n_exprs=16)],
        "cpu": [IndexConfig(rank=2, size=64), IndexConfig(rank=4, size=16)],
        "gpu": [IndexConfig(rank=2, size=64), IndexConfig(rank=4, size=16)],
    }
    #: the class under test; tests swap in broken subclasses
    tensor_cls = StridedTensor
    n_random_chains = 600

    # -- operator contract: index the same expressions both ways -------------------------------------
    def inputs(self, config, device, dtype, seed):
        rng = random.Random(seed)
        shape = (config.size,) * config.rank
        n = config.size**config.rank
        storage = torch.arange(n + 3, dtype=dtype, device=device)
        base = torch.as_strided(storage, shape, StridedTensor(storage, shape).strides, 3)  # offset 3
        own = self.tensor_cls(storage, shape, None, 3)
        exprs = [random_index(rng, shape, negative=False) for _ in range(config.n_exprs)]
        return base, own, exprs

    def reference(self, base, own, exprs):
        return tuple(base[e] for e in exprs)

    def items(self, config):
        return config.n_exprs, "views"

    @impl(baseline=True)
    def torch_getitem(self, base, own, exprs):
        return lambda: tuple(base[e] for e in exprs)

    @impl
    def strided_getitem(self, base, own, exprs):
        return lambda: tuple(own[e] for e in exprs)

    def check(self, ctx):
        self.check_random_chains(ctx)
        self.check_errors(ctx)
        # generic part: the values of the timed expressions (as torch views of the shared storage)
        for config in ctx.configs:
            base, own, exprs = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            got = tuple(v.to_torch() for v in self.strided_getitem(base, own, exprs)())
            ctx.assert_close(got, self.reference(base, own, exprs), name="strided_getitem (timed expressions)")

    # -- random chains --------------------------------------------------------------------------------
    def check_random_chains(self, ctx) -> None:
        rng = random.Random(ctx.rng_seed)
        mismatch: dict[str, list[str]] = {
            "raises nothing on valid chains": [],
            "layout vs torch": [],
            "values vs torch": [],
            "layout vs NumPy": [],
            "view(-1) vs torch": [],
            "shares the storage": [],
        }
        n_neg = 0
        for _ in range(self.n_random_chains):
            shape = tuple(rng.randint(1, 5) for _ in range(rng.randint(1, 4)))
            off = rng.randint(0, 3)
            n = int(np.prod(shape))
            storage = torch.arange(off + n, dtype=ctx.dtype, device=ctx.device)
            np_storage = np.arange(off + n, dtype=np.float64)
            perm = list(range(len(shape)))
            rng.shuffle(perm)
            t = storage[off:].view(shape).permute(perm)  # torch view
            a = np_storage[off:].reshape(shape).transpose(perm)  # NumPy view
            index = random_index(rng, tuple(t.shape))
            # a trailing ... makes NumPy return a 0-d view instead of a scalar for all-int indices
            a_v = a[index if Ellipsis in index else index + (Ellipsis,)]
            swap = rng.sample(range(a_v.ndim), 2) if a_v.ndim >= 2 and rng.random() < 0.5 else None
            where = f"shape {shape}, offset {off}, permute {perm}, index {index}, transpose {swap}"
            try:
                st = self.tensor_cls(storage, shape, None, off).permute(*perm)
                st_v = st[index]
                if swap:
                    st_v = st_v.transpose(*swap)
            except Exception as e:  # the class under test failed on a valid chain: a finding, not a crash
                mismatch["raises nothing on valid chains"].append(f"{where}: {type(e).__name__}: {e}")
                continue
            if swap:
                a_v = a_v.swapaxes(*swap)
            layout = (tuple(st_v.shape), tuple(st_v.strides), st_v.offset)
            if _addressing(*layout) != _addressing(*_numpy_layout(a_v, np_storage)):
                mismatch["layout vs NumPy"].append(f"{where}: own {layout}, NumPy {_numpy_layout(a_v, np_storage)}")
            vals = torch_values(t, index)
            if swap:
                vals = vals.transpose(*swap)
            got = st_v.to_torch()
            if got.shape != vals.shape or not torch.equal(got, vals):
                mismatch["values vs torch"].append(f"{where}: own {got.tolist()}, torch {vals.tolist()}")
            if _has_negative_step(index):
                n_neg += 1
                continue
            tv = t[index]
            if swap:
                tv = tv.transpose(*swap)
            if layout != (tuple(tv.shape), tuple(tv.stride()), tv.storage_offset()):
                mismatch["layout vs torch"].append(
                    f"{where}: own {layout}, torch {(tuple(tv.shape), tv.stride(), tv.storage_offset())}"
                )
            if not st_v.is_view_of(st) or (
                got.numel() and got.untyped_storage().data_ptr() != storage.untyped_storage().data_ptr()
            ):
                mismatch["shares the storage"].append(where)
            try:
                want_v = tv.view(-1).stride()
            except RuntimeError:
                want_v = "RuntimeError"
            try:
                got_v = st_v.view(-1).strides
            except RuntimeError:
                got_v = "RuntimeError"
            if got_v != want_v:
                mismatch["view(-1) vs torch"].append(f"{where}: own {got_v}, torch {want_v}")
        ctx.metric("random_chains", self.n_random_chains)
        ctx.metric("random_chains_with_negative_steps", n_neg)
        ctx.expect(
            n_neg > self.n_random_chains // 10 and self.n_random_chains - n_neg > self.n_random_chains // 3,
            f"{n_neg} of {self.n_random_chains} chains step backwards: both kinds must be well represented",
            name="random chains cover positive and negative steps",
        )
        for what, bad in mismatch.items():
            ctx.expect(
                not bad,
                f"random chains: {what}: {len(bad)} of {self.n_random_chains} fail, e.g. {bad[0][:400] if bad else ''}",
                name=f"random chains: {what}",
            )

    def check_errors(self, ctx) -> None:
        t = torch.arange(12, dtype=ctx.dtype, device=ctx.device).reshape(3, 4)
        st = self.tensor_cls(t.reshape(-1), (3, 4))
        ctx.expect_raises(
            ValueError, lambda: t[::-1], match="step must be greater than zero", name="torch refuses negative steps"
        )
        for index in ((5,), (slice(None), -5), (1, 4), (-4,)):
            try:
                t[index]
                raise AssertionError(f"torch accepted {index}")
            except IndexError as e:
                want = str(e)
            e = ctx.expect_raises(
                IndexError,
                lambda: st[index],
                match=f"index {index[-1]} ",
                name="out-of-range index raises IndexError naming it",
            )
            ctx.expect(
                str(e) == want,
                f"message for {index}: own {str(e)!r}, torch {want!r}",
                name="out-of-range message equals torch's",
            )
        ctx.expect_raises(
            IndexError, lambda: st[1, 2, 3], match="too many indices", name="too many indices raise IndexError"
        )
