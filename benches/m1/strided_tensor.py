"""m1 A tensor class with stride-based slicing.

``kernels.tensor.strided.StridedTensor`` is nothing but (flat storage, shape, strides, offset):
element [i0, ..., ik] lives at ``storage[offset + sum(i_d * s_d)]``, and every view op
(indexing with ints, slices, None and ``...``, transpose, permute, flip) only computes a
new (shape, strides, offset) over the same storage.

Check: 600 random chains (``kernels/tensor/index_chains.py``: permute a base tensor over a
storage with a non-zero offset, index it with a random expression of ints, slices, None and
``...``, a third of the slices stepping backwards, then maybe transpose two dims):

* positive steps: shape, strides, storage offset and values equal the torch view built by
  the same ops, the view shares the storage, and ``view(-1)`` raises exactly where torch's
  does and otherwise gives torch's strides;
* every chain, negative steps included (torch refuses those, which the check confirms):
  the layout equals NumPy's (NumPy allows negative strides) and the values equal torch's
  taken dim by dim;
* an out-of-range int raises IndexError with torch's message word for word; too many
  indices raise IndexError too.

Bench: applying the same 64 positive-step index expressions with
``torch.Tensor.__getitem__`` (baseline: C++ view creation) and with
``StridedTensor.__getitem__`` (Python arithmetic on tuples).

Lesson: a view is a few integer multiplications, and the cost of indexing is bookkeeping
either way: torch parses the Python index and allocates a new TensorImpl with autograd
metadata for every view, so a pure-Python class doing the same arithmetic on tuples stays
within a small factor of it (the claims say how small). The layout rules are the lesson: an
unsqueezed dim takes stride size*stride of the next dim, out-of-range slice bounds clamp
while out-of-range ints raise, and negative steps are just negative strides (NumPy has them,
"The N-dimensional array" in the NumPy docs; torch does not, so ``flip`` copies there).
"""

from __future__ import annotations

import dataclasses
import random

import torch

from harness import Operator, impl, task
from harness.claims import time_ratio
from harness.mutants import Mutant
from kernels.tensor.index_chains import CATEGORIES, compare_chain, random_index
from kernels.tensor.strided import StridedTensor

_CLAIM = "pure-Python views within 8x of torch's C++ view creation per expression (rank {})"


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


# -- wrong tensor classes (the mutants) ----------------------------------------------------------
class _Keep(StridedTensor):
    """StridedTensor's views are plain StridedTensors; keep a wrong subclass through them."""

    def _wrap(self, v):
        return type(self)(v.storage, v.shape, v.strides, v.offset)

    def permute(self, *dims):
        return self._wrap(StridedTensor.permute(self, *dims))

    def __getitem__(self, index):
        return self._wrap(StridedTensor.__getitem__(self, index))


class ShapeOnlyTranspose(_Keep):
    """WRONG: swaps the sizes but keeps the strides: a reshape disguised as a transpose."""

    def transpose(self, d0, d1):
        shape = list(self.shape)
        shape[d0], shape[d1] = shape[d1], shape[d0]
        return ShapeOnlyTranspose(self.storage, tuple(shape), self.strides, self.offset)


class IgnoresStepSign(_Keep):
    """WRONG: treats a:b:-c as a:b:c."""

    def __getitem__(self, index):
        items = index if isinstance(index, tuple) else (index,)
        fix = tuple(slice(i.start, i.stop, abs(i.step)) if isinstance(i, slice) and i.step else i for i in items)
        return super().__getitem__(fix)


class NumpyNoneStride(_Keep):
    """WRONG: gives a None dim stride 0 (NumPy's choice) instead of torch's size * stride."""

    def __getitem__(self, index):
        v = StridedTensor.__getitem__(self, index)
        if None in (index if isinstance(index, tuple) else (index,)):
            return NumpyNoneStride(
                v.storage, v.shape, tuple(0 if n == 1 else s for n, s in zip(v.shape, v.strides)), v.offset
            )
        return NumpyNoneStride(v.storage, v.shape, v.strides, v.offset)


class TooManyIndicesIgnored(StridedTensor):
    """WRONG: drops indices beyond ndim instead of raising."""

    def __getitem__(self, index):
        return super().__getitem__(index[: self.ndim] if isinstance(index, tuple) else index)


@task("m1.strided_tensor", seed="m1", title="a Tensor class with stride-based slicing")
class StridedTensorTask(Operator):
    __doc__ = __doc__
    allow_alias = True  # views of the input are the point
    sizes = {
        "tiny": [IndexConfig(rank=3, size=5, n_exprs=16)],
        "cpu": [IndexConfig(rank=2, size=64), IndexConfig(rank=4, size=16)],
        "gpu": [IndexConfig(rank=2, size=64), IndexConfig(rank=4, size=16)],
    }
    claims = (
        time_ratio("strided_getitem", to="torch_getitem", at_most=8, config="rank=4", text=_CLAIM.format(4)),
        time_ratio("strided_getitem", to="torch_getitem", at_most=8, config="rank=2", text=_CLAIM.format(2)),
    )
    #: the class under test; the mutants swap in wrong subclasses
    tensor_cls = StridedTensor
    mutants = (
        Mutant(
            "shape_only_transpose",
            "transpose swaps sizes, not strides",
            {"tensor_cls": ShapeOnlyTranspose},
            match="random chains",
        ),
        Mutant("ignores_step_sign", "a:b:-c walks forwards", {"tensor_cls": IgnoresStepSign}, match="random chains"),
        Mutant(
            "numpy_none_stride",
            "None dims get stride 0 (NumPy's)",
            {"tensor_cls": NumpyNoneStride},
            match="layout vs torch",
        ),
        Mutant(
            "too_many_indices_ignored",
            "extra indices dropped silently",
            {"tensor_cls": TooManyIndicesIgnored},
            match="too many indices",
        ),
    )
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
        mismatch: dict[str, list[str]] = {c: [] for c in CATEGORIES}
        n, n_neg = self.n_random_chains, 0
        for _ in range(n):
            found, negative = compare_chain(self.tensor_cls, rng, ctx.dtype, ctx.device)
            n_neg += negative
            for what, why in found.items():
                mismatch[what].append(why)
        ctx.metric("random_chains", n)
        ctx.metric("random_chains_with_negative_steps", n_neg)
        msg = f"{n_neg} of {n} chains step backwards: both kinds must be well represented"
        ctx.expect(n // 10 < n_neg < n - n // 3, msg, name="random chains cover positive and negative steps")
        for what, bad in mismatch.items():
            msg = f"random chains: {what}: {len(bad)} of {n} fail, e.g. {bad[0][:400] if bad else ''}"
            ctx.expect(not bad, msg, name=f"random chains: {what}")

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
