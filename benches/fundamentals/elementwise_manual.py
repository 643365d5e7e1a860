"""1.04 Element-wise ops without built-ins: add, sub, mul, div, maximum, neg, exp, sigmoid.

Compared, against the torch op (``torch.add`` ... ``torch.sigmoid``, the baseline):

* ``loop``: :func:`kernels.tensor.iterator.elementwise_loop`: pure Python over the raw
  storage. An odometer walks the output index; each operand keeps a storage offset
  that moves by its strides, a broadcast dimension having stride 0. Arithmetic on
  Python floats (float64, rounded to float32 at the end), exp by Cody-Waite range
  reduction and a Taylor polynomial, IEEE division and NaN-propagating maximum by hand
  (Python raises on x / 0.0 and its max() drops NaN).
* ``strided``: :func:`kernels.tensor.iterator.elementwise_strided`: the same addressing
  vectorised: the storage offset of every output element is built from the strides
  (repeat_interleave + repeat, one dimension at a time, no broadcasting), the operands
  are fetched with ``torch.take`` from the flat storage, then the arithmetic runs on
  aligned 1-D tensors (exp again by range reduction: about 1.5 ulp in float32 where
  torch.exp is within 1).

Inputs include broadcasting (missing and size-1 dims, a 0-d operand) and strided
operands (a permuted view; a step-2 slice with a storage offset). Special values
(+-inf, nan, exp overflow and underflow, division by +-0) are checked separately.

Lesson: TensorIterator does the same stride arithmetic, but once per block in C++ with
SIMD over the inner dimension (PyTorch's ``aten/src/ATen/TensorIterator.h``; "How
TensorIterator works", PyTorch dev podcast / wiki). The Python loop pays the interpreter for
every element (the arithmetic is nothing beside it, and exp/sigmoid run a 14-term
polynomial in Python); the strided engine removes the interpreter but builds int64
offsets and gathers, moving 3-4 times the bytes of the op, and each polynomial step is a
separate full pass. The claims say how far each engine
stays behind.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Operator, impl, task
from harness.claims import speedup
from harness.mutants import replace_impl
from kernels.tensor.iterator import SCALAR_OPS, VECTOR_OPS, elementwise_loop, elementwise_strided

TORCH_OPS = {n: getattr(torch, n) for n in ("add", "sub", "mul", "div", "maximum", "neg", "exp", "sigmoid")}

SPECIAL = "-inf -200 -104 -88 -1e-8 -0.0 0.0 1e-8 1 88 88.7 89 200 inf nan"
OTHER = "0.0 -0.0 0.0 1 0.0 0.0 -0.0 nan -1 inf 2 -inf 0.0 1 3"


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
        shapes = "x".join(map(str, self.a_shape)) + (
            "" if self.b_shape is None else "," + "x".join(map(str, self.b_shape))
        )
        return f"{self.op} ({shapes}){' strided' if self.strided else ''}"


def _make(shape, g, dtype, strided: bool, role: str) -> torch.Tensor:
    if not strided or not shape:
        return torch.randn(shape, generator=g, dtype=dtype) * 3
    if role == "a":  # a permuted view: its strides run in reverse order
        t = torch.randn(shape[::-1], generator=g, dtype=dtype).mul_(3)  # (s_n-1, ..., s_0)
        return t.permute(*range(len(shape) - 1, -1, -1))  # (s_0, ..., s_n-1), non-contiguous
    # every other element of the last dim, starting at storage offset 1
    full = torch.randn(*shape[:-1], 2 * shape[-1] + 1, generator=g, dtype=dtype).mul_(3)
    return full[..., 1::2]


# -- wrong versions, declared as mutants below ------------------------------------------
def _ignores_strides(self, op, *tensors):
    """Reads every operand as if contiguous: right on plain inputs, wrong on views."""
    dense = [t.as_strided(t.shape, torch.empty(t.shape).stride()) for t in tensors]  # strides dropped
    return lambda: elementwise_loop(op, *dense)


def _python_per_element(op, scalar_fn):
    """The loop with ``op``'s scalar function replaced (values taken in broadcast order)."""

    def wrong(self, op_, *tensors):
        if op_ != op:
            return lambda: elementwise_loop(op_, *tensors)
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        cols = [t.expand(shape).reshape(-1).tolist() for t in tensors]
        return lambda: torch.tensor([scalar_fn(*v) for v in zip(*cols)], dtype=tensors[0].dtype).view(shape)

    return wrong


def _taylor_exp(x):  # no range reduction: fine near 0, far off for |x| of tens
    return sum(x**n / math.factorial(n) for n in range(12)) if math.isfinite(x) else math.exp(x)


def _no_zero_stride(self, op, *tensors):
    """Forgets stride 0 for broadcast dims: tiles the small operand's storage instead."""
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    n = math.prod(shape)
    flat = [t.contiguous().reshape(-1).repeat(n // max(t.numel(), 1) or 1)[:n] for t in tensors]
    return lambda: VECTOR_OPS[op](*flat).view(shape)


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
        # the Python loop (~1-5 us per element) bounds the size: 4096 elements per call
        "cpu": [ElementwiseConfig(op, (64, 64), (64,)) for op in ("add", "mul", "div")]
        + [ElementwiseConfig(op, (64, 64)) for op in ("exp", "sigmoid")],
        "gpu": [ElementwiseConfig(op, (128, 128), (128,)) for op in ("add", "mul", "div")]
        + [ElementwiseConfig(op, (128, 128)) for op in ("exp", "sigmoid")],
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
        replace_impl("ignores_strides", "the loop reads every operand as if contiguous", "loop", _ignores_strides),
        replace_impl(
            "exp_no_range_reduction", "exp by a plain Taylor series", "loop", _python_per_element("exp", _taylor_exp)
        ),
        replace_impl(
            "maximum_drops_nan",
            "maximum by Python's max(), which drops a NaN",
            "loop",
            _python_per_element("maximum", max),
            match="maximum",
        ),
        replace_impl(
            "broadcast_stride_not_zero", "the strided engine tiles broadcast operands", "strided", _no_zero_stride
        ),
    )

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        a = _make(config.a_shape, g, dtype, config.strided, "a").to(device)
        if config.b_shape is None:
            return config.op, a
        return config.op, a, _make(config.b_shape, g, dtype, config.strided, "b").to(device)

    def reference(self, op, *tensors):
        return TORCH_OPS[op](*tensors)

    def bytes(self, config, dtype):
        el = torch.empty((), dtype=dtype).element_size()
        shapes = [config.a_shape] + ([] if config.b_shape is None else [config.b_shape])
        out = math.prod(torch.broadcast_shapes(*shapes))
        return el * (sum(math.prod(s) for s in shapes) + out)

    @impl(baseline=True)
    def torch_op(self, op, *tensors):
        fn = TORCH_OPS[op]
        return lambda: fn(*tensors)

    @impl
    def loop(self, op, *tensors):
        return lambda: elementwise_loop(op, *tensors)

    @impl
    def strided(self, op, *tensors):
        return lambda: elementwise_strided(op, *tensors)

    def extra_checks(self, ctx):
        dev, dt = ctx.device, ctx.dtype
        # +-inf, nan, exp overflow/underflow edges, signed zeros; paired with divisors +-0, nan, inf
        special = torch.tensor([float(v) for v in SPECIAL.split()], dtype=dt, device=dev)
        other = torch.tensor([float(v) for v in OTHER.split()], dtype=dt, device=dev)
        cases = [(op, (special,)) for op in ("exp", "sigmoid", "neg")]
        cases += [(op, (special, other)) for op in ("div", "maximum", "add", "mul")]
        # an expanded operand (stride 0 already) and a 0-d operand
        half = torch.tensor(0.5, dtype=dt, device=dev)
        cases += [("sub", (torch.arange(4.0, dtype=dt, device=dev).expand(3, 4), half))]
        for spec in ctx.implementations(self):
            for op, tensors in cases:
                ctx.assert_close(
                    getattr(self, spec.method)(op, *tensors)(),
                    TORCH_OPS[op](*tensors),
                    equal_nan=True,
                    name=f"special values: {op}",
                    where=spec.name,
                )
            # float64 end to end (the loop rounds nothing then; the polynomial has degree 14)
            x = torch.randn(5, 3, dtype=torch.float64, device=dev) * 5
            y = torch.randn(3, dtype=torch.float64, device=dev)
            for op in ("div", "exp", "sigmoid"):
                args = (x, y) if SCALAR_OPS[op][0] == 2 else (x,)
                ctx.assert_close(
                    getattr(self, spec.method)(op, *args)(),
                    TORCH_OPS[op](*args),
                    name="float64",
                    where=f"{spec.name} {op}",
                )
        for engine in (elementwise_loop, elementwise_strided):
            a = torch.randn(3, 4, dtype=dt, device=dev)
            ctx.expect_raises(
                ValueError,
                lambda: engine("add", a, torch.randn(3, dtype=dt, device=dev)),
                match="not broadcastable",
                name="incompatible shapes raise ValueError",
            )
            ctx.expect_raises(
                TypeError, lambda: engine("add", a, a.double()), match="dtype", name="mixed dtypes raise TypeError"
            )
            ctx.expect_raises(ValueError, lambda: engine("pow", a, a), match="unknown op", name="unknown op raises")
