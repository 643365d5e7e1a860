"""1.03 A custom broadcasting example: pairwise differences a (N, 1, D) - b (1, M, D).

The example: all pairwise difference vectors between two point sets, the first step
of a distance matrix. The broadcasting rule is written by hand
(:func:`kernels.tensor.iterator.broadcast_shape`: align shapes on the right, sizes equal
or 1) and checked against ``torch.broadcast_shapes`` on 1000 seeded random shape sets,
compatible and not; incompatible shapes raise ValueError naming the dimension.

Compared, all against ``a - b``:

* ``implicit`` (baseline): ``a - b``; torch's TensorIterator reads broadcast dimensions
  with stride 0.
* ``expand``: the own rule plus :func:`kernels.tensor.iterator.expand_to`, which builds
  the stride-0 views with ``as_strided`` (no copy), then ``torch.sub`` of the views.
* ``materialised``: the same views made ``.contiguous()`` first, as code that
  "repeats" or "tiles" the smaller operand does: two full-size copies are written and
  read back before the subtraction.

Lesson: broadcasting is free in memory: a stride of 0 repeats an element without
copying it, so implicit and expand-based broadcasting move only the output's bytes
(each input read once), while materialising writes and reads two more full-size tensors.
In cache the copies are cheap; beyond the caches they cost several times the subtraction
itself, and the claims below say by how much on the machine that ran them. The stride-0
view is how NumPy defines broadcasting too (NumPy docs, "Broadcasting": "no copies are
made"; PyTorch docs, "Broadcasting semantics").
"""

from __future__ import annotations

import dataclasses
import math
import random

import torch

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant, replace_impl
from kernels.tensor.iterator import broadcast_shape, expand_to


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


def random_shapes(rng: random.Random) -> list[tuple[int, ...]]:
    """1-4 shapes that drop leading dims of a common target and set some sizes to 1
    (broadcastable); in 40% of draws the full target joins them and one size of another
    shape becomes 4 or 7, which the target (sizes 0, 2, 3, 5) cannot broadcast with."""
    target = [
        rng.choice([0, 2, 3, 5]) if rng.random() < 0.1 else rng.choice([2, 3, 5]) for _ in range(rng.randint(0, 5))
    ]
    shapes = []
    for _ in range(rng.randint(1, 3)):
        s = [1 if rng.random() < 0.4 else n for n in target[rng.randint(0, len(target)) :]]
        shapes.append(s)
    if target and rng.random() < 0.4:
        s = rng.choice(shapes)
        if s:
            s[rng.randrange(len(s))] = rng.choice([4, 7])
        shapes.append(list(target))
    return [tuple(s) for s in shapes]


# -- wrong versions of the rule, declared as mutants below ------------------------------
def _lenient_rule(*shapes):
    """Takes the larger size instead of rejecting a mismatch such as (3,) vs (4,)."""
    nd = max(len(s) for s in shapes)
    padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
    return tuple(max(col) for col in zip(*padded))


def _left_aligned_rule(*shapes):
    """Pads missing dimensions on the right (aligns shapes on the left)."""
    nd = max(len(s) for s in shapes)
    return broadcast_shape(*[tuple(s) + (1,) * (nd - len(s)) for s in shapes])


def _rule(name: str, what: str, rule, match: str) -> Mutant:
    return Mutant(name, what, {"shape_rule": staticmethod(rule)}, match=match)


def _wrong_tile(self, a, b):
    """Tiles b along the wrong axis: right shape, wrong values wherever b varies."""
    shape = torch.broadcast_shapes(a.shape, b.shape)
    return lambda: a.expand(shape) - b.expand(shape).flip(0).contiguous()


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
        speedup(
            "implicit", over="materialised", at_least=2.0, text="implicit a - b >= 2x materialising (largest size)"
        ),
        time_ratio("expand", to="implicit", at_most=1.5, text="stride-0 views (expand) within 1.5x of implicit a - b"),
    )
    mutants = (
        _rule("lenient_rule", "takes the larger size instead of rejecting (3,) vs (4,)", _lenient_rule, "broadcast"),
        _rule("left_aligned_rule", "aligns shapes on the left", _left_aligned_rule, "torch.broadcast_shapes gives"),
        replace_impl("swapped_operands", "computes b - a", "materialised", lambda self, a, b: lambda: b - a),
        replace_impl("wrong_tiling", "tiles b along the wrong axis", "materialised", _wrong_tile),
    )
    #: the hand-written rule under test; the mutants swap in wrong ones
    shape_rule = staticmethod(broadcast_shape)

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(config.a_shape, generator=g, dtype=dtype)
        b = torch.randn(config.b_shape, generator=g, dtype=dtype)
        return a.to(device), b.to(device)

    def reference(self, a, b):
        return a - b

    def bytes(self, config, dtype):
        el = torch.empty((), dtype=dtype).element_size()
        out = math.prod(torch.broadcast_shapes(config.a_shape, config.b_shape))
        return el * (math.prod(config.a_shape) + math.prod(config.b_shape) + out)

    @impl(baseline=True)
    def implicit(self, a, b):
        return lambda: a - b

    @impl
    def expand(self, a, b):
        def run():
            shape = self.shape_rule(a.shape, b.shape)
            return torch.sub(expand_to(a, shape), expand_to(b, shape))  # stride-0 views, no copies

        return run

    @impl
    def materialised(self, a, b):
        def run():
            shape = self.shape_rule(a.shape, b.shape)
            # full-size copies of both operands, as repeat()/tile() would make
            return torch.sub(expand_to(a, shape).contiguous(), expand_to(b, shape).contiguous())

        return run

    def check(self, ctx):
        self.check_rule(ctx)  # first: the implementations build on the rule
        super().check(ctx)

    def check_rule(self, ctx):
        """The own rule agrees with torch.broadcast_shapes and rejects clearly."""
        rng = random.Random(ctx.rng_seed)
        n_bad = 0
        for _ in range(1000):
            shapes = random_shapes(rng)
            try:
                want = tuple(torch.broadcast_shapes(*shapes))
            except RuntimeError:
                want = None
            try:
                got = tuple(self.shape_rule(*shapes))
            except ValueError as e:
                got = None
                ctx.expect(
                    "not broadcastable" in str(e),
                    f"rule on {shapes}: unclear error {e!r}",
                    name="incompatible: clear error",
                )
            n_bad += want is None
            ctx.expect(
                got == want,
                f"rule on {shapes}: gives {got}, torch.broadcast_shapes gives {'an error' if want is None else want}",
                name="rule agrees with torch.broadcast_shapes",
            )
        ctx.expect(
            n_bad >= 100,
            f"only {n_bad} incompatible draws in 1000: the generator tests rejection too little",
            name="random shapes include incompatible ones",
        )
        ctx.expect_raises(
            ValueError, lambda: self.shape_rule((3,), (4,)), match="not broadcastable", name="rejects (3,) vs (4,)"
        )
        ctx.expect_raises(
            ValueError,
            lambda: self.shape_rule((2, 1, 3), (2, 5, 4)),
            match="dimension -1",
            name="error names the dimension",
        )

    def extra_checks(self, ctx):
        # expand_to: a stride-0 view of the same storage, equal to torch.broadcast_to
        for config in ctx.configs:
            a, b = self.inputs(config, ctx.device, ctx.dtype, ctx.rng_seed)
            shape = torch.broadcast_shapes(a.shape, b.shape)
            for t in (a, b):
                v = expand_to(t, shape)
                ctx.assert_close(v, torch.broadcast_to(t, shape), name="expand_to equals broadcast_to")
                ctx.expect(
                    t.numel() == 0 or v.untyped_storage().data_ptr() == t.untyped_storage().data_ptr(),
                    f"expand_to {tuple(t.shape)} -> {tuple(shape)} copied; it must be a view",
                    name="expand_to is a view",
                )
        ctx.expect_raises(
            ValueError,
            lambda: expand_to(torch.zeros(3), (4,)),
            match="cannot broadcast",
            name="expand_to rejects (3,) -> (4,)",
        )
