"""m1 A tensor class with stride-based slicing.

``kernels.tensor.strided.StridedTensor`` is nothing but (flat storage, shape, strides, offset):
element [i0, ..., ik] lives at ``storage[offset + sum(i_d * s_d)]``, and every view op
(indexing with ints, slices, None and ``...``, transpose, permute, flip) only computes a
new (shape, strides, offset) over the same storage.

Check: 600 random chains (``kernels/tensor/index_chains.py``: a permuted base tensor over a
storage with a non-zero offset, indexed by a random expression of ints, slices, None and
``...``, a third of the slices stepping backwards, then maybe a transpose). With positive steps
the layout, the values, the shared storage and ``view(-1)``'s verdict equal torch's; with any
steps the layout equals NumPy's (NumPy has negative strides, torch refuses them) and the values
equal torch's taken dim by dim. Out-of-range ints raise torch's IndexError word for word. Bench:
the same 64 positive-step expressions through ``torch.Tensor.__getitem__`` (baseline: C++ view
creation) and ``StridedTensor.__getitem__`` (Python arithmetic on tuples).

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
from kernels.tensor.index_chains import random_index, run_chains, torch_index_error
from kernels.tensor.strided import StridedTensor
from kernels.tensor.strided_wrong import IgnoresStepSign, NumpyNoneStride, ShapeOnlyTranspose, TooManyIndicesIgnored

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


def _wrong(name: str, what: str, cls: type, match: str) -> Mutant:
    """A mutant checking ``cls`` (a wrong subclass from kernels.tensor.strided_wrong) instead."""
    return Mutant(name, what, {"tensor_cls": cls}, match=match)


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
        _wrong("shape_only_transpose", "transpose swaps sizes, not strides", ShapeOnlyTranspose, "random chains"),
        _wrong("ignores_step_sign", "a:b:-c walks forwards", IgnoresStepSign, "random chains"),
        _wrong("numpy_none_stride", "None dims get stride 0 (NumPy's)", NumpyNoneStride, "layout vs torch"),
        _wrong("too_many_indices_ignored", "extra indices dropped silently", TooManyIndicesIgnored, "too many indices"),
    )
    n_random_chains = 600

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
        n = self.n_random_chains
        mismatch, n_neg = run_chains(self.tensor_cls, ctx.rng_seed, n, ctx.dtype, ctx.device)
        ctx.metric("random_chains", n)
        ctx.metric("random_chains_with_negative_steps", n_neg)
        msg = f"{n_neg} of {n} chains step backwards: both kinds must be well represented"
        ctx.expect(n // 10 < n_neg < n - n // 3, msg, name="random chains cover positive and negative steps")
        for what, bad in mismatch.items():
            msg = f"random chains: {what}: {len(bad)} of {n} fail, e.g. {bad[0][:400] if bad else ''}"
            ctx.expect(not bad, msg, name=f"random chains: {what}")
        self.check_errors(ctx)
        # the values of the timed expressions (as torch views of the shared storage)
        for config in ctx.configs:
            base, own, exprs = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            got = tuple(v.to_torch() for v in self.strided_getitem(base, own, exprs)())
            ctx.assert_close(got, self.reference(base, own, exprs), name="strided_getitem (timed expressions)")

    def check_errors(self, ctx) -> None:
        t = torch.arange(12, dtype=ctx.dtype, device=ctx.device).reshape(3, 4)
        st = self.tensor_cls(t.reshape(-1), (3, 4))
        ctx.expect_raises(
            ValueError, lambda: t[::-1], match="step must be greater than zero", name="torch refuses negative steps"
        )
        for index in ((5,), (slice(None), -5), (1, 4), (-4,)):
            want = torch_index_error(t, index)
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
