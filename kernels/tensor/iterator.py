"""What ``TensorIterator`` does, by hand: broadcasting, scalar/vector exp, element-wise engines (1.03, 1.04, m1).

What torch does inside ``TensorIterator`` and ``Tensor.view``, written out:

- :func:`broadcast_shape`: NumPy's broadcasting rule (align shapes on the right; each
  pair of sizes must be equal or one of them 1). Source: NumPy manual, "Broadcasting";
  PyTorch docs, "Broadcasting semantics".
- :func:`broadcast_strides` / :func:`expand_to`: broadcasting without copying: a
  broadcast dimension gets stride 0, so every index along it reads the same element.
- :func:`elementwise_loop`: an element-wise engine in pure Python over the raw storage:
  an odometer walks the output indices and keeps one storage offset per operand,
  advanced by that operand's (broadcast) strides. No torch op touches the values.
- :func:`elementwise_strided`: the same addressing vectorised: storage offsets of every
  output element built from the strides (``repeat_interleave``/``repeat``, no
  broadcasting), operands fetched with ``torch.take`` from the flat storage, then the
  arithmetic on aligned 1-D operands (exp/sigmoid by range reduction, no ``torch.exp``).
- :func:`view_strides`: the rule deciding whether a reshape can be a view, i.e. whether
  strides exist for the new shape that address the same elements in the same order
  (ATen's ``computeStride`` in aten/src/ATen/TensorUtils.cpp).

Legend: ``shape``/``stride`` are tuples of ints in elements (not bytes); ``offset`` is a
storage offset in elements. Only non-negative strides occur (torch has no negative ones).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = [
    "SCALAR_OPS",
    "VECTOR_OPS",
    "broadcast_shape",
    "broadcast_strides",
    "expand_to",
    "broadcast_sub",
    "elementwise_loop",
    "elementwise_strided",
    "engine_operand",
    "exp_scalar",
    "exp_vector",
    "storage_offsets",
]


# -- broadcasting ------------------------------------------------------------------------


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The shape that ``shapes`` broadcast to (equals ``torch.broadcast_shapes``).

    Shapes are aligned on their last dimension; missing leading dimensions count as 1.
    In each dimension the sizes must be equal or 1; a size 0 broadcasts only with 0 or 1.

    Raises:
        ValueError: naming the first dimension (counted from the right, as -1, -2, ...)
            whose sizes disagree, and the shapes.
        TypeError: a size that is not an int, or is negative.
    """
    for s in shapes:
        for n in s:
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise TypeError(f"broadcast_shape: shape {tuple(s)} has size {n!r}; sizes must be ints >= 0")
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for d in range(-ndim, 0):  # from the left of the aligned shapes, dims counted from the right
        sizes = [s[d] for s in shapes if len(s) >= -d]
        big = [n for n in sizes if n != 1]
        if big and any(n != big[0] for n in big):
            raise ValueError(
                f"shapes {', '.join(str(tuple(s)) for s in shapes)} are not broadcastable: dimension {d} has sizes "
                f"{sizes}; in each dimension (aligned from the right) sizes must be equal or 1"
            )
        out.append(big[0] if big else 1)
    return tuple(out)


def broadcast_strides(shape: Sequence[int], stride: Sequence[int], out_shape: Sequence[int]) -> tuple[int, ...]:
    """Strides that read a tensor of ``shape``/``stride`` as if it had ``out_shape``.

    A dimension that is broadcast (size 1 there, or missing on the left) gets stride 0.

    Raises:
        ValueError: ``shape`` does not broadcast to ``out_shape``.
    """
    if len(shape) > len(out_shape):
        raise ValueError(f"cannot broadcast shape {tuple(shape)} to {tuple(out_shape)}: it has more dimensions")
    lead = len(out_shape) - len(shape)
    out = [0] * lead
    for d, (n, st) in enumerate(zip(shape, stride)):
        target = out_shape[lead + d]
        if n == target:
            out.append(st)
        elif n == 1:
            out.append(0)  # every index along this dimension reads the one element
        else:
            raise ValueError(
                f"cannot broadcast shape {tuple(shape)} to {tuple(out_shape)}: dimension {d} has "
                f"size {n}, target {target}; sizes must match or be 1"
            )
    return tuple(out)


def expand_to(t: Tensor, shape: Sequence[int]) -> Tensor:
    """A view of ``t`` broadcast to ``shape`` (equals ``t.expand(shape)``); never copies.

    Raises:
        ValueError: ``t.shape`` does not broadcast to ``shape``.
    """
    return t.as_strided(tuple(shape), broadcast_strides(t.shape, t.stride(), shape), t.storage_offset())


def broadcast_sub(a: Tensor, b: Tensor, rule: Callable = broadcast_shape, *, materialise: bool = False) -> Tensor:
    """a - b, broadcast by hand: the output shape from ``rule`` (default :func:`broadcast_shape`),
    both operands as stride-0 views (:func:`expand_to`, no copies) subtracted by ``torch.sub``.

    ``materialise=True`` makes the views contiguous first, as code that "repeats" or "tiles" the
    smaller operand does: two full-size copies written and read back. Raises ValueError (from the
    rule) for shapes that do not broadcast.
    """
    shape = rule(a.shape, b.shape)
    va, vb = expand_to(a, shape), expand_to(b, shape)
    return torch.sub(va.contiguous(), vb.contiguous()) if materialise else torch.sub(va, vb)


# -- scalar and vector exp (no math.exp / torch.exp) ------------------------------------
# exp(x) = 2**k * exp(r) with k = round(x / ln 2), |r| <= ln(2)/2 (Cody-Waite range
# reduction; ln 2 split into a high part exact in few bits and a low correction, as in
# fdlibm's e_exp.c), then a Taylor polynomial for exp(r) and an exact scaling by 2**k.

_LN2_HI_64, _LN2_LO_64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # fdlibm
_LN2_HI_32, _LN2_LO_32 = 0.693145751953125, 1.42860682030941723212e-6  # Cephes expf
_INV_LN2 = 1.4426950408889634
_MAX_ARG, _MIN_ARG = 709.782712893384, -745.1332191019412  # float64 exp overflow / underflow to 0


def exp_scalar(x: float) -> float:
    """exp(x) of a Python float to about 1 ulp of float64; inf/nan handled as IEEE."""
    if x != x:
        return x
    if x > _MAX_ARG:
        return math.inf
    if x < _MIN_ARG:
        return 0.0
    k = round(x * _INV_LN2)
    r = (x - k * _LN2_HI_64) - k * _LN2_LO_64
    p = 1.0
    for n in range(14, 0, -1):  # Horner form of sum r**n / n!, n <= 14: |r|**15/15! < 1e-19
        p = 1.0 + p * r / n
    return math.ldexp(p, k)


def exp_vector(x: Tensor) -> Tensor:
    """Element-wise exp of a float tensor by range reduction and a polynomial (no torch.exp).

    float32: degree 7 (|r|**8/8! < 6e-9, below float32's 6e-8 half-ulp); float64: degree 14.
    """
    hi, lo, degree = (_LN2_HI_32, _LN2_LO_32, 7) if x.dtype != torch.float64 else (_LN2_HI_64, _LN2_LO_64, 14)
    # beyond these, exp is inf / 0 in float32 anyway; clamping keeps k finite (nan stays nan)
    xc = x.clamp(-104.0, 89.0) if x.dtype != torch.float64 else x.clamp(_MIN_ARG - 1, _MAX_ARG + 1)
    k = torch.round(xc * _INV_LN2)
    r = (xc - k * hi) - k * lo
    p = torch.ones_like(r)
    for n in range(degree, 0, -1):
        p = 1.0 + p * r / n
    # 2**k in two halves: 2**128 alone overflows float32 although p * 2**128 may not
    half = torch.floor(k / 2)
    return p * torch.pow(2.0, half) * torch.pow(2.0, k - half)


def _div(x: float, y: float) -> float:
    # Python raises ZeroDivisionError where IEEE 754 gives inf or nan
    if y == 0.0:
        if x != x or x == 0.0:
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _maximum(x: float, y: float) -> float:
    # torch.maximum propagates nan; Python's max does not
    if x != x or y != y:
        return math.nan
    return x if x >= y else y


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + exp_scalar(-x))


#: name -> (arity, function of Python floats)
SCALAR_OPS: dict[str, tuple[int, Callable[..., float]]] = {
    "add": (2, lambda x, y: x + y),
    "sub": (2, lambda x, y: x - y),
    "mul": (2, lambda x, y: x * y),
    "div": (2, _div),
    "maximum": (2, _maximum),
    "neg": (1, lambda x: -x),
    "exp": (1, exp_scalar),
    "sigmoid": (1, _sigmoid),
}


def _maximum_vec(x: Tensor, y: Tensor) -> Tensor:
    m = torch.where(x >= y, x, y)
    m = torch.where(x != x, x, m)  # nan in x wins
    return torch.where(y != y, y, m)  # nan in y wins


#: name -> function of aligned 1-D tensors (same shape, no broadcasting left to do)
VECTOR_OPS: dict[str, Callable[..., Tensor]] = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "maximum": _maximum_vec,
    "neg": lambda x: -x,
    "exp": exp_vector,
    "sigmoid": lambda x: 1.0 / (1.0 + exp_vector(-x)),
}


# -- element-wise engines ----------------------------------------------------------------


def _operands(op: str, tensors: Sequence[Tensor], table: dict) -> tuple[Callable, tuple[int, ...]]:
    if op not in table:
        raise ValueError(f"unknown op {op!r}; known: {', '.join(sorted(table))}")
    entry = table[op]
    arity = entry[0] if isinstance(entry, tuple) else SCALAR_OPS[op][0]
    if len(tensors) != arity:
        raise TypeError(f"{op} takes {arity} tensor(s), got {len(tensors)}")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1:
        raise TypeError(
            f"{op}: operands have dtypes {sorted(map(str, dtypes))}; this engine does no type "
            "promotion, cast them to one dtype first"
        )
    if not tensors[0].dtype.is_floating_point:
        raise TypeError(f"{op}: dtype {tensors[0].dtype} is not floating point")
    return (entry[1] if isinstance(entry, tuple) else entry), broadcast_shape(*(t.shape for t in tensors))


def _span(t: Tensor) -> tuple[int, int]:
    """First and one-past-last storage offsets any element of ``t`` uses."""
    lo = t.storage_offset()
    return lo, lo + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) + 1


def elementwise_loop(op: str, *tensors: Tensor) -> Tensor:
    """``op`` applied element-wise with broadcasting, one Python float at a time.

    Each operand's storage is read as a flat list; the output index advances like an
    odometer (last dimension fastest) and each operand's storage offset moves by its
    broadcast stride, so broadcasting and non-contiguous inputs need no copies.

    Args:
        op: a key of :data:`SCALAR_OPS`.
        tensors: float tensors of one dtype whose shapes broadcast.

    Returns:
        A new contiguous tensor of the broadcast shape, the operands' dtype and device.

    Raises:
        ValueError: unknown op or shapes that do not broadcast. TypeError: wrong number
        of operands, mixed or non-float dtypes.
    """
    fn, shape = _operands(op, tensors, SCALAR_OPS)
    numel = math.prod(shape)
    flats, offs, strides = [], [], []
    for t in tensors:
        lo, hi = _span(t)
        # the storage from the first to the last used element, as Python floats
        flats.append(t.detach().as_strided((max(hi - lo, 0),), (1,), lo).tolist() if t.numel() else [])
        offs.append(0)
        strides.append(broadcast_strides(t.shape, t.stride(), shape))
    out = [0.0] * numel
    index = [0] * len(shape)
    for i in range(numel):
        out[i] = fn(*[f[o] for f, o in zip(flats, offs)])
        d = len(shape) - 1
        while d >= 0:  # odometer step: bump the last index, carry into earlier ones
            index[d] += 1
            if index[d] < shape[d]:
                for k in range(len(offs)):
                    offs[k] += strides[k][d]
                break
            for k in range(len(offs)):  # wrapped: rewind this dimension
                offs[k] -= strides[k][d] * (shape[d] - 1)
            index[d] = 0
            d -= 1
    return torch.tensor(out, dtype=tensors[0].dtype).view(shape).to(tensors[0].device)  # (numel,) -> shape


def storage_offsets(t: Tensor, shape: Sequence[int]) -> Tensor:
    """Storage offset of every element of ``t`` broadcast to ``shape``, row-major, int64 (numel,).

    Built one dimension at a time with no broadcasting: after d dims ``idx`` holds the
    offsets of the (s0 * ... * s_{d-1},) prefix; each of them is repeated s_d times and
    the steps 0, st_d, 2 st_d, ... are tiled under them.
    """
    idx = torch.tensor([t.storage_offset()], dtype=torch.int64, device=t.device)  # (1,)
    for size, st in zip(shape, broadcast_strides(t.shape, t.stride(), shape)):
        steps = torch.arange(size, dtype=torch.int64, device=t.device) * st  # (size,)
        idx = idx.repeat_interleave(size) + steps.repeat(idx.numel())  # (prefix * size,)
    return idx


def elementwise_strided(op: str, *tensors: Tensor) -> Tensor:
    """``op`` with broadcasting, vectorised: gather by hand-computed offsets, then 1-D arithmetic.

    Same arguments, result and errors as :func:`elementwise_loop` (``op`` a key of
    :data:`VECTOR_OPS`).
    """
    fn, shape = _operands(op, tensors, VECTOR_OPS)
    flat = []
    for t in tensors:
        n_storage = t.untyped_storage().nbytes() // t.element_size()
        storage = t.detach().as_strided((n_storage,), (1,), 0)  # the whole storage as 1-D (n_storage,)
        flat.append(torch.take(storage, storage_offsets(t, shape)))  # (numel,), aligned across operands
    return fn(*flat).view(shape)  # (numel,) -> shape, row-major like the offsets


def engine_operand(shape: Sequence[int], g: torch.Generator, dtype: torch.dtype, strided: bool, role: str) -> Tensor:
    """A random N(0, 9) operand of ``shape`` for the engines' check (1.04).

    Contiguous unless ``strided``: then role ``"a"`` gives a permuted view (its strides run in
    reverse order) and role ``"b"`` every other element of the last dim starting at storage
    offset 1, so both stride and offset arithmetic get exercised. A 0-d shape is always contiguous.
    """
    if not strided or not shape:
        return torch.randn(shape, generator=g, dtype=dtype) * 3
    if role == "a":
        t = torch.randn(tuple(shape)[::-1], generator=g, dtype=dtype).mul_(3)  # (s_n-1, ..., s_0)
        return t.permute(*range(len(shape) - 1, -1, -1))  # (s_0, ..., s_n-1), non-contiguous
    full = torch.randn(*shape[:-1], 2 * shape[-1] + 1, generator=g, dtype=dtype).mul_(3)
    return full[..., 1::2]
