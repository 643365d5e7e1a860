"""m1 Element-wise ops with manual broadcasting.

Broadcasting written out with the pieces of ``kernels/tensor/iterator.py``: the shape rule
``broadcast_shape`` (align on the right, sizes equal or 1), ``broadcast_strides`` (a
broadcast dim reads with stride 0), ``storage_offsets`` and the 1-D ``VECTOR_OPS``. Two
engines for ``op(a, b)`` with a, b of broadcastable shapes:

* ``expand_views``: the own rule, then ``expand_to`` (``as_strided`` with stride 0 on the
  broadcast dims, no copy) and torch's op on two views of equal shape.
* ``strided_gather``: no broadcasting by torch at all: the storage offset of every output
  element is built for each operand from its broadcast strides, the operands are gathered
  from their flat storage with ``torch.take`` into aligned 1-D tensors (numel,), the op runs
  on those and the result is viewed as the output shape.

``torch`` (baseline) is ``op(a, b)`` with torch's own broadcasting (TensorIterator, stride 0).

Check, by enumeration:

* the rule, exhaustively (``kernels/tensor/broadcast_enum.py``): on all 14,641 ordered
  pairs of shapes of rank 0..4 with sizes in {1, 3, 4} it gives torch's result, raising a
  ValueError naming the dimension exactly on the 7,820 incompatible pairs;
* values: every pair of rank <= 4 with sizes in {1, 3} (every broadcast pattern) plus every
  7th broadcastable {1, 3, 4} pair: both engines equal torch in shape and values for add,
  sub, mul, div, maximum in rotation, every other first operand non-contiguous; every 8th
  incompatible pair is refused by both engines with ValueError;
* then the generic operator check on the configs (3 seeds, not-mutated/alias/constant guards).

Lesson: broadcasting is stride bookkeeping. Given stride-0 views, torch's kernel does the
same work as for its own broadcasting, so ``expand_views`` costs only its Python rule once
the output is large. Materialising the addressing is what is expensive: ``strided_gather``
builds an int64 offset per output element per operand (16 bytes of index traffic for every
4-byte result, plus the repeat passes) and then gathers, instead of letting the iterator
walk strides (PyTorch docs, "Broadcasting semantics"; TensorIterator in ATen).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant
from kernels.tensor.broadcast_enum import compare_rule, enumerate_shapes
from kernels.tensor.iterator import VECTOR_OPS, broadcast_shape, expand_to, storage_offsets

OPS = ("add", "sub", "mul", "div", "maximum")
TORCH_OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum}
_VIEWS = "stride-0 expanded views + torch's op within 1.2x of torch's own broadcasting (bias add)"
_GATHER = "torch's stride walk >= 20x gathering by materialised int64 offsets (bias add)"


@dataclasses.dataclass(frozen=True)
class BroadcastOpConfig:
    """out = op(a, b), a and b of broadcastable shapes."""

    op: str
    """one of add, sub, mul, div, maximum"""
    a_shape: tuple[int, ...]
    """shape of a (elements)"""
    b_shape: tuple[int, ...]
    """shape of b (elements)"""

    def label(self) -> str:
        return f"{self.op}{self.a_shape}{self.b_shape}".replace(" ", "")


def _flat_storage(t: torch.Tensor) -> torch.Tensor:
    """The whole storage of ``t`` as a 1-D tensor (n_storage,) sharing memory."""
    n = t.untyped_storage().nbytes() // t.element_size()
    return t.detach().as_strided((n,), (1,), 0)


# -- wrong rules and engines (the mutants) -------------------------------------------------------
def _max_rule(*shapes):
    """WRONG: accepts any sizes and takes the largest: (3,) vs (4,) 'broadcasts' to (4,)."""
    n = max(len(s) for s in shapes)
    padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
    return tuple(max(d) for d in zip(*padded, strict=True))


def _left_aligned(*shapes):
    """WRONG: pads on the right (aligns on the first dim): (3,) with (3, 1) gives (3, 1)."""
    n = max(len(s) for s in shapes)
    return broadcast_shape(*[tuple(s) + (1,) * (n - len(s)) for s in shapes])


def _gather_pads_right(self, op, a, b):
    """WRONG: the gather engine pads b's shape on the right: (3,) becomes (3, 1), a column."""
    if b.dim() < a.dim():
        b = b.reshape(tuple(b.shape) + (1,) * (a.dim() - b.dim()))
    return ManualBroadcast.strided_gather(self, op, a, b)


@task("m1.manual_broadcast", seed="m1", title="elementwise ops with manual broadcasting")
class ManualBroadcast(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [
            BroadcastOpConfig("add", (5, 1, 7), (3, 1)),
            BroadcastOpConfig("div", (2, 1, 4, 1), (3, 1, 6)),
            BroadcastOpConfig("maximum", (), (4, 3)),
        ],
        # bias add over an NCHW batch, an outer product, a row-wise add
        "cpu": [
            BroadcastOpConfig("add", (32, 64, 32, 32), (64, 1, 1)),
            BroadcastOpConfig("mul", (1024, 1), (1, 1024)),
            BroadcastOpConfig("sub", (2048, 512), (512,)),
        ],
        "gpu": [
            BroadcastOpConfig("add", (128, 256, 32, 32), (256, 1, 1)),
            BroadcastOpConfig("mul", (8192, 1), (1, 8192)),
            BroadcastOpConfig("sub", (16384, 4096), (4096,)),
        ],
    }
    claims = (
        time_ratio("expand_views", to="torch", at_most=1.2, config="add(", text=_VIEWS),
        speedup("torch", over="strided_gather", at_least=20, config="add(", text=_GATHER),
    )
    #: the hand-written shape rule under test; the mutants swap in wrong ones
    shape_rule = staticmethod(broadcast_shape)
    mutants = (
        Mutant("max_rule", "takes the larger size", {"shape_rule": staticmethod(_max_rule)}, match="rule gives (4,)"),
        Mutant("left_aligned", "aligns on the left", {"shape_rule": staticmethod(_left_aligned)}, match="disagree"),
        Mutant(
            "gather_pads_right",
            "gather pads b on the right",
            {"strided_gather": _gather_pads_right},
            match="strided_gather",
        ),
    )

    # -- engines --------------------------------------------------------------------------------
    def expand_views(self, op: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        shape = self.shape_rule(a.shape, b.shape)
        return TORCH_OPS[op](expand_to(a, shape), expand_to(b, shape))  # equal shapes: nothing left to broadcast

    def strided_gather(self, op: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        shape = self.shape_rule(a.shape, b.shape)
        fa = torch.take(_flat_storage(a), storage_offsets(a, shape))  # (numel,)
        fb = torch.take(_flat_storage(b), storage_offsets(b, shape))  # (numel,), aligned with fa
        return VECTOR_OPS[op](fa, fb).view(shape)  # (numel,) -> shape, row-major like the offsets

    # -- operator contract -----------------------------------------------------------------------
    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(config.a_shape, generator=g, dtype=dtype)
        b = torch.randn(config.b_shape, generator=g, dtype=dtype)
        if config.op == "div":
            b = b.sign() * (b.abs() + 0.5)  # keep divisors away from 0
        return config.op, a.to(device), b.to(device)

    def reference(self, op, a, b):
        return TORCH_OPS[op](a, b)

    def bytes(self, config, dtype):
        el = torch.empty((), dtype=dtype).element_size()
        out = math.prod(torch.broadcast_shapes(config.a_shape, config.b_shape))
        return el * (math.prod(config.a_shape) + math.prod(config.b_shape) + out)

    @impl(baseline=True, name="torch")
    def torch_impl(self, op, a, b):
        return lambda: TORCH_OPS[op](a, b)

    @impl(name="expand_views")
    def expand_impl(self, op, a, b):
        return lambda: self.expand_views(op, a, b)

    @impl(name="strided_gather")
    def gather_impl(self, op, a, b):
        return lambda: self.strided_gather(op, a, b)

    # -- check ------------------------------------------------------------------------------------
    def check(self, ctx):
        self.check_all_pairs(ctx)
        super().check(ctx)

    def check_all_pairs(self, ctx) -> None:
        shapes = enumerate_shapes()
        found = compare_rule(self.shape_rule, shapes)
        wrong, unclear, ok_pairs, bad_pairs = found.wrong, found.unclear, found.ok_pairs, found.bad_pairs
        ctx.metric("enumerated_pairs", len(shapes) ** 2)
        ctx.metric("broadcastable_pairs", len(ok_pairs))
        ctx.metric("incompatible_pairs", len(bad_pairs))
        both = f"{len(ok_pairs)} broadcastable and {len(bad_pairs)} incompatible pairs: both must be well represented"
        ctx.expect(len(ok_pairs) > 1000 and len(bad_pairs) > 1000, both, name="enumeration covers both kinds")
        msg = f"{len(wrong)} of {len(shapes) ** 2} pairs disagree with torch, e.g. " + "; ".join(wrong[:3])
        ctx.expect(not wrong, msg, name="rule equals torch on all 14,641 pairs")
        msg = "errors that do not name the dimension: " + "; ".join(unclear[:3])
        ctx.expect(not unclear, msg, name="incompatible: error names the dimension")
        rule_34 = lambda: self.shape_rule((3,), (4,))  # noqa: E731 (a one-line thunk reads better here)
        ctx.expect_raises(ValueError, rule_34, match="not broadcastable", name="rule rejects (3,) vs (4,)")
        # values: every broadcast pattern of rank <= 4 (sizes 1 and 3: each dim equal, 1 vs n,
        # n vs 1, missing on either side), plus every 7th broadcastable pair with sizes 1, 3, 4
        patterns = enumerate_shapes(sizes=(1, 3))
        value_pairs = list(itertools.product(patterns, patterns)) + ok_pairs[::7]
        self._check_values(ctx, value_pairs)
        accepted = []
        for sa, sb in bad_pairs[::8]:
            a, b = (torch.ones(sh, device=ctx.device, dtype=ctx.dtype) for sh in (sa, sb))
            for name in ("expand_views", "strided_gather"):
                try:
                    getattr(self, name)("add", a, b)
                    accepted.append(f"{name}: add of {sa} and {sb}")
                except ValueError:
                    pass
        msg = "engines returned on shapes torch refuses: " + "; ".join(accepted[:3])
        ctx.expect(not accepted, msg, name="engines reject incompatible pairs (every 8th)")

    def _check_values(self, ctx, pairs) -> None:
        g = ctx.generator()
        got: dict[str, list] = {"expand_views": [], "strided_gather": []}
        want, bad_shape = [], []
        for i, (sa, sb) in enumerate(pairs):
            if i % 2:  # a non-contiguous first operand: a permuted buffer of the reversed shape
                a = torch.randn(sa[::-1], generator=g, dtype=ctx.dtype).permute(tuple(range(len(sa) - 1, -1, -1)))
            else:
                a = torch.randn(sa, generator=g, dtype=ctx.dtype)
            b = torch.randn(sb, generator=g, dtype=ctx.dtype) + 3.0  # away from 0 for div
            a, b = a.to(ctx.device), b.to(ctx.device)
            op = OPS[i % len(OPS)]
            ref = TORCH_OPS[op](a, b)
            want.append(ref.reshape(-1))
            for name, outs in got.items():
                try:
                    out = getattr(self, name)(op, a, b)
                except (ValueError, RuntimeError, IndexError) as e:  # a failure to report, not a crash
                    bad_shape.append(f"{name}: {op} of {sa} and {sb} raised {type(e).__name__}: {e}")
                    out = torch.full(ref.shape, float("nan"), dtype=ref.dtype, device=ref.device)
                if out.shape != ref.shape:
                    bad_shape.append(
                        f"{name}: {op} of {sa} and {sb} gives {tuple(out.shape)}, torch {tuple(ref.shape)}"
                    )
                outs.append(out.reshape(-1))
        ctx.metric("value_checked_pairs", len(pairs))
        ctx.expect(not bad_shape, "; ".join(bad_shape[:3]), name="engines: output shapes equal torch's")
        for name, outs in got.items():
            ctx.assert_close(torch.cat(outs), torch.cat(want), name=f"{name}: values on the enumerated pairs")
