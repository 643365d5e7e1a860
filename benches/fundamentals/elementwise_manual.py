"""1.04 Element-wise ops without built-ins: add, sub, mul, div, maximum, neg, exp, sigmoid.

Compared, against the torch op (``torch_op``, the baseline), two engines of :mod:`kernels.tensor.iterator`:

* ``loop`` (``elementwise_loop``): pure Python over the raw storage: an odometer walks the output
  index, each operand's storage offset moving by its strides (0 along a broadcast dim); Python
  floats (float64, rounded at the end), exp by Cody-Waite range reduction and a Taylor polynomial,
  IEEE division and NaN-propagating maximum by hand (Python raises on x / 0.0, max() drops NaN).
* ``strided`` (``elementwise_strided``): the same addressing vectorised: every output element's
  storage offset built from the strides, the operands fetched with ``torch.take`` from the flat
  storage, the arithmetic on aligned 1-D tensors (exp about 1.5 ulp in float32, torch.exp 1).

Lesson: TensorIterator does the same stride arithmetic, but once per block in C++ with SIMD over the
inner dimension (PyTorch's ``aten/src/ATen/TensorIterator.h``; "How TensorIterator works", PyTorch
dev podcast / wiki). The Python loop pays the interpreter for every element (the arithmetic is
nothing beside it, and exp/sigmoid run a 14-term polynomial in Python); the strided engine removes
the interpreter but builds int64 offsets and gathers, moving 3-4 times the bytes of the op, and
each polynomial step is a separate full pass; the claims say how far each engine stays behind.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Operator, impl, task
from harness.claims import speedup
from harness.mutants import replace_call
from harness.rejects import expect_rejects
from kernels.tensor import wrong
from kernels.tensor.iterator import SCALAR_OPS, elementwise_loop, elementwise_strided, engine_operand

SPECIAL = "-inf -200 -104 -88 -1e-8 -0.0 0.0 1e-8 1 88 88.7 89 200 inf nan"  # +-inf, nan, exp's edges, +-0
OTHER = "0.0 -0.0 0.0 1 0.0 0.0 -0.0 nan -1 inf 2 -inf 0.0 1 3"  # paired with SPECIAL: divisors +-0, nan, inf
BENCH_OPS = ("add", "mul", "div", "exp", "sigmoid")  # few elements: the Python loop costs ~1-5 us per element


@dataclasses.dataclass(frozen=True)
class ElementwiseConfig:
    """out = op(a[, b]) with broadcasting."""

    op: str
    """a key of kernels.tensor.iterator.SCALAR_OPS"""
    a_shape: tuple[int, ...]
    """shape of a (elements)"""
    b_shape: tuple[int, ...] | None = None
    """shape of b for binary ops (elements)"""
    strided: bool = False
    """a is a permuted view and b a step-2 slice with storage offset 1 (non-contiguous)"""

    @property
    def label(self) -> str:
        shapes = ",".join("x".join(map(str, s)) for s in (self.a_shape, self.b_shape) if s is not None)
        return f"{self.op} ({shapes}){' strided' if self.strided else ''}"


@task("fundamentals.elementwise_manual", seed="1.04", title="element-wise ops without built-ins")
class ElementwiseManual(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [
            ElementwiseConfig("add", (7, 13, 5), (13, 1)),
            ElementwiseConfig("sub", (3, 1, 4), (5, 1), True),
            ElementwiseConfig("mul", (6, 5), ()),
            ElementwiseConfig("div", (4, 6), (4, 6), True),
            ElementwiseConfig("maximum", (2, 3, 4), (3, 1)),
            ElementwiseConfig("neg", (0, 3)),
            ElementwiseConfig("exp", (7, 13), strided=True),
            ElementwiseConfig("sigmoid", (5, 4, 3)),
        ],
        "cpu": [ElementwiseConfig(op, (64, 64), (64,) if SCALAR_OPS[op][0] == 2 else None) for op in BENCH_OPS],
        "gpu": [ElementwiseConfig(op, (128, 128), (128,) if SCALAR_OPS[op][0] == 2 else None) for op in BENCH_OPS],
    }
    claims = (
        speedup(
            "torch_op",
            over="loop",
            at_least=100,
            config="add",
            text="torch.add >= 100x the Python loop (the interpreter pays per element)",
        ),
        speedup(
            "strided", over="loop", at_least=10, text="vectorised stride arithmetic >= 10x the Python loop (sigmoid)"
        ),
        speedup(
            "torch_op", over="strided", at_least=5, text="TensorIterator >= 5x the hand-vectorised gather (sigmoid)"
        ),
    )
    mutants = (
        replace_call("ignores_strides", "the loop reads every operand as if contiguous", "loop", wrong.ignores_strides),
        replace_call("exp_no_range_reduction", "exp by a plain Taylor series", "loop", wrong.loop_exp_taylor),
        replace_call(
            "maximum_drops_nan",
            "maximum by Python's max(), which drops a NaN",
            "loop",
            wrong.loop_maximum_drops_nan,
            match="maximum",
        ),
        replace_call(
            "broadcast_stride_not_zero", "the strided engine tiles broadcast operands", "strided", wrong.tiles_broadcast
        ),
    )

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        roles = [(s, role) for s, role in ((config.a_shape, "a"), (config.b_shape, "b")) if s is not None]
        return config.op, *(engine_operand(s, g, dtype, config.strided, role).to(device) for s, role in roles)

    def reference(self, op, *tensors):
        return getattr(torch, op)(*tensors)

    def bytes(self, config, dtype):
        shapes = [s for s in (config.a_shape, config.b_shape) if s is not None]  # read the operands, write out
        return (sum(map(math.prod, shapes)) + math.prod(torch.broadcast_shapes(*shapes))) * torch.finfo(dtype).bits // 8

    @impl(baseline=True)
    def torch_op(self, op, *tensors):
        return lambda fn=getattr(torch, op): fn(*tensors)  # torch.add ... torch.sigmoid, looked up outside the call

    @impl
    def loop(self, op, *tensors):
        return lambda: elementwise_loop(op, *tensors)

    @impl
    def strided(self, op, *tensors):
        return lambda: elementwise_strided(op, *tensors)

    def extra_checks(self, ctx):
        dev, dt = ctx.device, ctx.dtype
        special, other = (torch.tensor([float(v) for v in vs.split()], dtype=dt, device=dev) for vs in (SPECIAL, OTHER))
        cases = [(f"special values: {op}", op, (special,)) for op in ("exp", "sigmoid", "neg")]
        cases += [(f"special values: {op}", op, (special, other)) for op in ("div", "maximum", "add", "mul")]
        row = special.new_tensor([0, 1, 2, 3]).expand(3, 4)  # an expanded operand (stride 0 already)
        cases += [("special values: sub", "sub", (row, special.new_tensor(0.5)))]  # and a 0-d operand
        # float64 end to end (the loop rounds nothing then; the polynomial has degree 14)
        x, y = torch.randn(5, 3, dtype=torch.float64, device=dev) * 5, torch.randn(3, dtype=torch.float64, device=dev)
        cases += [("float64", op, (x, y) if SCALAR_OPS[op][0] == 2 else (x,)) for op in ("div", "exp", "sigmoid")]
        for spec in ctx.implementations(self):
            for name, op, ts in cases:
                out = getattr(self, spec.method)(op, *ts)()
                ctx.assert_close(out, self.reference(op, *ts), equal_nan=True, name=name, where=f"{spec.name} {op}")
        a = torch.randn(3, 4, dtype=dt, device=dev)
        bad = [  # (error, inputs, message part, check name): the engines' own errors
            (ValueError, ("add", a, a[0, :3]), "not broadcastable", "incompatible shapes raise ValueError"),
            (TypeError, ("add", a, a.double()), "dtype", "mixed dtypes raise TypeError"),
            (ValueError, ("pow", a, a), "unknown op", "unknown op raises"),
        ]
        expect_rejects(ctx, self, bad, baseline=False)
