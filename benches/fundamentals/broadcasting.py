"""1.03 A custom broadcasting example: pairwise differences a (N, 1, D) - b (1, M, D).

The first step of a distance matrix. The rule is written by hand (``broadcast_shape``: align
shapes on the right, sizes equal or 1) and checked against ``torch.broadcast_shapes`` on 1000
seeded random shape sets, compatible and not; incompatible shapes raise ValueError naming the dim.

Compared, all against ``a - b`` (the rule and the own two: :mod:`kernels.tensor.iterator`):

* ``implicit`` (baseline): ``a - b``; torch's TensorIterator reads broadcast dims with stride 0.
* ``expand``: the own rule plus :func:`kernels.tensor.iterator.expand_to`, which builds the
  stride-0 views with ``as_strided`` (no copy), then ``torch.sub`` of the views.
* ``materialised``: the same views made ``.contiguous()`` first, as code that "repeats" or
  "tiles" the smaller operand does: two full-size copies written and read back before the sub.

Lesson: broadcasting is free in memory: a stride of 0 repeats an element without copying it, so
implicit and expand-based broadcasting move only the output's bytes (each input read once), while
materialising writes and reads two more full-size tensors. In cache the copies are cheap; beyond
the caches they cost several times the subtraction itself (the claims say by how much). The
stride-0 view is how NumPy defines broadcasting too (NumPy docs, "Broadcasting": "no copies are
made"; PyTorch docs, "Broadcasting semantics").
"""

from __future__ import annotations

import dataclasses
import math
import random

import torch

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_call
from kernels.tensor import wrong
from kernels.tensor.broadcast_enum import random_shapes, shape_or_error
from kernels.tensor.iterator import broadcast_shape, broadcast_sub, expand_to
from kernels.tensor.reshape import shares_storage


@dataclasses.dataclass(frozen=True)
class BroadcastConfig:
    """out = a - b with a, b of broadcastable shapes."""

    a_shape: tuple[int, ...]
    """shape of a (elements)"""
    b_shape: tuple[int, ...]
    """shape of b (elements)"""

    @property
    def label(self) -> str:
        return f"{self.a_shape}-{self.b_shape}".replace(" ", "")


def pairwise(n: int, m: int, d: int) -> BroadcastConfig:
    """(N, 1, D) - (1, M, D) -> (N, M, D): every difference of N points and M points."""
    return BroadcastConfig((n, 1, d), (1, m, d))


def _rule(name: str, what: str, rule, match: str = "broadcast") -> Mutant:
    return Mutant(name, what, {"shape_rule": staticmethod(rule)}, match=match)


@task("fundamentals.broadcasting", seed="1.03", title="a custom broadcasting example")
class Broadcasting(Operator):
    __doc__ = __doc__
    sizes = {
        # missing leading dims, both sides expanded, a 0-d operand, a size-0 dim
        "tiny": [
            pairwise(7, 4, 5),
            BroadcastConfig((3, 1, 6), (6,)),
            BroadcastConfig((2, 3, 4), ()),
            BroadcastConfig((1,), (5, 4, 1)),
            BroadcastConfig((0, 3), (1, 3)),
            BroadcastConfig((4, 1, 1, 3), (2, 1, 1)),
        ],
        "cpu": [pairwise(64, 64, 64), pairwise(256, 256, 64), pairwise(1024, 1024, 16)],
        "gpu": [pairwise(256, 256, 64), pairwise(1024, 1024, 64), pairwise(4096, 4096, 16)],
    }
    claims = (
        speedup("implicit", over="materialised", at_least=2, text="implicit a - b >= 2x materialising (largest size)"),
        time_ratio("expand", to="implicit", at_most=1.5, text="stride-0 views (expand) within 1.5x of implicit a - b"),
    )
    mutants = (
        _rule("lenient_rule", "takes the larger size instead of rejecting (3,) vs (4,)", wrong.lenient_rule),
        _rule("left_aligned_rule", "aligns shapes on the left", wrong.left_aligned, "torch.broadcast_shapes gives"),
        replace_call("swapped_operands", "computes b - a", "materialised", lambda a, b: b - a),
        replace_call("wrong_tiling", "tiles b along the wrong axis", "materialised", wrong.sub_tiled_wrong_axis),
    )
    #: the hand-written rule under test; the mutants swap in wrong ones
    shape_rule = staticmethod(broadcast_shape)

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        return tuple(torch.randn(s, generator=g, dtype=dtype).to(device) for s in (config.a_shape, config.b_shape))

    def reference(self, a, b):
        return a - b

    def bytes(self, config, dtype):
        shapes = (config.a_shape, config.b_shape, torch.broadcast_shapes(config.a_shape, config.b_shape))
        return sum(map(math.prod, shapes)) * torch.empty((), dtype=dtype).element_size()  # read a, b; write out

    @impl(baseline=True)
    def implicit(self, a, b):
        return lambda: a - b

    @impl
    def expand(self, a, b):
        return lambda: broadcast_sub(a, b, self.shape_rule)  # stride-0 views, no copies

    @impl
    def materialised(self, a, b):
        return lambda: broadcast_sub(a, b, self.shape_rule, materialise=True)  # two full-size copies first

    def check(self, ctx):
        self.check_rule(ctx)  # first: the implementations build on the rule
        super().check(ctx)

    def check_rule(self, ctx):
        """The own rule agrees with torch.broadcast_shapes on 1000 random shape sets and rejects clearly."""
        rng, n_bad = random.Random(ctx.rng_seed), 0
        for _ in range(1000):
            shapes = random_shapes(rng)
            want, _ = shape_or_error(torch.broadcast_shapes, shapes, RuntimeError)
            got, err = shape_or_error(self.shape_rule, shapes, ValueError)
            if err is not None:
                msg = f"rule on {shapes}: unclear error {err!r}"
                ctx.expect("not broadcastable" in str(err), msg, name="incompatible: clear error")
            n_bad += want is None
            msg = f"rule on {shapes}: gives {got}, torch.broadcast_shapes gives {'an error' if want is None else want}"
            ctx.expect(got == want, msg, name="rule agrees with torch.broadcast_shapes")
        msg = f"only {n_bad} incompatible draws in 1000: the generator tests rejection too little"
        ctx.expect(n_bad >= 100, msg, name="random shapes include incompatible ones")
        for fn, match, name in (
            (lambda: self.shape_rule((3,), (4,)), "not broadcastable", "rejects (3,) vs (4,)"),
            (lambda: self.shape_rule((2, 1, 3), (2, 5, 4)), "dimension -1", "error names the dimension"),
            (lambda: expand_to(torch.zeros(3), (4,)), "cannot broadcast", "expand_to rejects (3,) -> (4,)"),
        ):
            ctx.expect_raises(ValueError, fn, match=match, name=name)

    def extra_checks(self, ctx):
        # expand_to: a stride-0 view of the same storage, equal to torch.broadcast_to
        for config in ctx.configs:
            a, b = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            shape = torch.broadcast_shapes(a.shape, b.shape)
            for t in (a, b):
                v = expand_to(t, shape)
                ctx.assert_close(v, torch.broadcast_to(t, shape), name="expand_to equals broadcast_to")
                msg = f"expand_to {tuple(t.shape)} -> {tuple(shape)} copied; it must be a view"
                ctx.expect(t.numel() == 0 or shares_storage(v, t), msg, name="expand_to is a view")
