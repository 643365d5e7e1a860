"""Primitive ops of the mini autodiff engine (kernels/autograd/mini_autograd.py): boxes and rules.

Two box types carry values through a user's function: ``_RNode`` (reverse mode: value and
parents with their vector-Jacobian closures) and ``_Dual`` (forward mode: value and
tangent). Each ``_Primitive`` computes on raw tensors and, per positional argument, holds
a vjp rule (g, out, *args) -> gradient of that argument and a jvp rule (t, out, *args) ->
that argument's contribution to the output tangent. Rules follow torch's
tools/autograd/derivatives.yaml (pow's masks, threshold_backward for relu, tanh via the
output) so results equal torch.func to rounding. Broadcasting: reverse rules sum the
gradient back to each input's shape (``_unbroadcast``); forward tangents of broadcast
inputs are expanded to the output's shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "exp",
    "log",
    "sin",
    "cos",
    "tanh",
    "pow",
    "matmul",
    "sum",
    "mean",
    "relu",
    "reshape",
    "transpose",
]


# --------------------------------------------------------------------------- boxes


class _Box:
    """Operator overloads shared by reverse and forward boxes (``value`` is a Tensor)."""

    value: Tensor
    __slots__ = ()

    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.dim())

    def dim(self) -> int:
        return self.value.dim()

    def __add__(self, o):
        return add(self, o)

    def __radd__(self, o):
        return add(o, self)

    def __sub__(self, o):
        return sub(self, o)

    def __rsub__(self, o):
        return sub(o, self)

    def __mul__(self, o):
        return mul(self, o)

    def __rmul__(self, o):
        return mul(o, self)

    def __truediv__(self, o):
        return div(self, o)

    def __rtruediv__(self, o):
        return div(o, self)

    def __pow__(self, o):
        return pow(self, o)

    def __rpow__(self, o):
        return pow(o, self)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(o, self)

    def __neg__(self):
        return neg(self)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sin(self):
        return sin(self)

    def cos(self):
        return cos(self)

    def tanh(self):
        return tanh(self)

    def relu(self):
        return relu(self)

    def sum(self, dim=None, keepdim=False):
        return sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return mean(self, dim, keepdim)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = shape[0]  # accept x.reshape((2, 3)) as well as x.reshape(2, 3)
        return reshape(self, shape)

    def transpose(self, d0, d1):
        return transpose(self, d0, d1)

    @property
    def T(self):
        if self.value.dim() != 2:
            raise ValueError(f".T needs a 2-D value here, got shape {tuple(self.value.shape)}")
        return transpose(self, 0, 1)


class _RNode(_Box):
    """Reverse-mode box: a value and its parents as (parent node, vjp closure) pairs."""

    __slots__ = ("value", "parents")

    def __init__(self, value: Tensor, parents: tuple = ()):
        self.value = value
        self.parents = parents


class _Dual(_Box):
    """Forward-mode box: a value and its tangent (None stands for a zero tangent)."""

    __slots__ = ("value", "tangent")

    def __init__(self, value: Tensor, tangent: Tensor | None):
        self.value = value
        self.tangent = tangent


def _unbox(x: Any) -> Any:
    return x.value if isinstance(x, _Box) else x


# --------------------------------------------------------------------------- primitives


class _Primitive:
    """An op: ``fwd`` on raw values, and per positional argument a vjp rule
    (g, out, *args, **kw) -> grad of that arg, and a jvp rule (t, out, *args, **kw) ->
    that arg's contribution to the output tangent. Only box arguments get rules applied."""

    def __init__(self, name: str, fwd: Callable, vjps: Sequence[Callable], jvps: Sequence[Callable]):
        self.name, self.fwd, self.vjps, self.jvps = name, fwd, tuple(vjps), tuple(jvps)

    def __call__(self, *args, **kw):
        vals = [_unbox(a) for a in args]
        out = self.fwd(*vals, **kw)
        rev = [i for i, a in enumerate(args) if isinstance(a, _RNode)]
        fwd = [i for i, a in enumerate(args) if isinstance(a, _Dual)]
        if rev and fwd:
            raise TypeError(
                f"{self.name}: reverse- and forward-mode values met in one op; "
                "nested vjp/jvp is not supported by mini_autograd"
            )
        if rev:
            parents = tuple((args[i], self._vjp_closure(i, out, vals, kw)) for i in rev)
            return _RNode(out, parents)
        if fwd:
            tangent = None
            for i in fwd:
                t = args[i].tangent
                if t is None:
                    continue
                c = self.jvps[i](t, out, *vals, **kw)
                tangent = c if tangent is None else tangent + c
            if tangent is not None and tangent.shape != out.shape:
                tangent = tangent.expand(out.shape)  # a broadcast input's tangent
            return _Dual(out, tangent)
        return out

    def _vjp_closure(self, i: int, out: Tensor, vals: list, kw: dict) -> Callable[[Tensor], Tensor]:
        rule = self.vjps[i]
        return lambda g: rule(g, out, *vals, **kw)


def _unbroadcast(g: Tensor, shape: torch.Size) -> Tensor:
    """Sum ``g`` (the broadcast result's shape) back to ``shape``: over leading dims that
    broadcasting added, and over dims where the input had size 1."""
    if g.shape == shape:
        return g
    lead = g.dim() - len(shape)
    if lead > 0:
        g = g.sum(dim=tuple(range(lead)))  # drop the dims broadcasting prepended
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g


def _shape(x) -> torch.Size:
    return x.shape if isinstance(x, Tensor) else torch.Size(())


def _where0(cond: Tensor, x: Tensor) -> Tensor:
    return torch.where(cond, torch.zeros((), dtype=x.dtype, device=x.device), x)


def _as_t(x, like: Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(x, dtype=like.dtype, device=like.device)


_binary_shape = lambda g, x: _unbroadcast(g, _shape(x))  # noqa: E731

add = _Primitive(
    "add",
    lambda x, y: x + y,
    [lambda g, o, x, y: _binary_shape(g, x), lambda g, o, x, y: _binary_shape(g, y)],
    [lambda t, o, x, y: t, lambda t, o, x, y: t],
)
sub = _Primitive(
    "sub",
    lambda x, y: x - y,
    [lambda g, o, x, y: _binary_shape(g, x), lambda g, o, x, y: _binary_shape(-g, y)],
    [lambda t, o, x, y: t, lambda t, o, x, y: -t],
)
mul = _Primitive(
    "mul",
    lambda x, y: x * y,
    [lambda g, o, x, y: _binary_shape(g * y, x), lambda g, o, x, y: _binary_shape(g * x, y)],
    [lambda t, o, x, y: t * y, lambda t, o, x, y: x * t],
)
div = _Primitive(
    "div",
    lambda x, y: x / y,
    [
        lambda g, o, x, y: _binary_shape(g / y, x),
        lambda g, o, x, y: _binary_shape(-g * x / (y * y), y),
    ],  # torch's div backward
    [lambda t, o, x, y: t / y, lambda t, o, x, y: -t * x / (y * y)],
)
neg = _Primitive("neg", torch.neg, [lambda g, o, x: -g], [lambda t, o, x: -t])
exp = _Primitive("exp", torch.exp, [lambda g, o, x: g * o], [lambda t, o, x: t * o])
log = _Primitive("log", torch.log, [lambda g, o, x: g / x], [lambda t, o, x: t / x])
sin = _Primitive("sin", torch.sin, [lambda g, o, x: g * x.cos()], [lambda t, o, x: t * x.cos()])
cos = _Primitive("cos", torch.cos, [lambda g, o, x: g * -x.sin()], [lambda t, o, x: t * -x.sin()])
tanh = _Primitive("tanh", torch.tanh, [lambda g, o, x: g * (1 - o * o)], [lambda t, o, x: t * (1 - o * o)])
# Gradient 0 where the output is <= 0, as torch's threshold_backward: a NaN input passes g.
relu = _Primitive("relu", torch.relu, [lambda g, o, x: _where0(o <= 0, g)], [lambda t, o, x: _where0(o <= 0, t)])


def _dpow_dx(x, y, o: Tensor) -> Tensor:
    """d(x^y)/dx = y x^(y-1), and exactly 0 where y == 0 (derivatives.yaml pow_backward)."""
    d = _as_t(y, o) * torch.pow(x, _as_t(y, o) - 1)
    return _where0(_as_t(y, o) == 0, d)


def _dpow_dy(x, y, o: Tensor) -> Tensor:
    """d(x^y)/dy = x^y log x, and 0 where x == 0 and y >= 0 (pow_backward_exponent)."""
    xt = _as_t(x, o)
    return _where0((xt == 0) & (_as_t(y, o) >= 0), o * xt.log())


pow = _Primitive(
    "pow",
    lambda x, y: x**y,
    [
        lambda g, o, x, y: _unbroadcast(g * _dpow_dx(x, y, o), _shape(x)),
        lambda g, o, x, y: _unbroadcast(g * _dpow_dy(x, y, o), _shape(y)),
    ],
    [lambda t, o, x, y: t * _dpow_dx(x, y, o), lambda t, o, x, y: t * _dpow_dy(x, y, o)],
)


def _matmul_vjp(which: int):
    def rule(g: Tensor, o: Tensor, a: Tensor, b: Tensor) -> Tensor:
        # Promote 1-D operands to matrices as torch.matmul does: a (k,) -> (1, k),
        # b (k,) -> (k, 1); put the removed unit dims back into g, then undo at the end.
        a2 = a.unsqueeze(0) if a.dim() == 1 else a  # (..., m, k)
        b2 = b.unsqueeze(-1) if b.dim() == 1 else b  # (..., k, n)
        full = torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        g2 = g.reshape(full)  # (..., m, n): only unit dims were dropped from it
        if which == 0:
            ga = g2 @ b2.transpose(-1, -2)  # (..., m, k)
            return _unbroadcast(ga, a2.shape).reshape(a.shape)
        gb = a2.transpose(-1, -2) @ g2  # (..., k, n)
        return _unbroadcast(gb, b2.shape).reshape(b.shape)

    return rule


matmul = _Primitive(
    "matmul", lambda a, b: a @ b, [_matmul_vjp(0), _matmul_vjp(1)], [lambda t, o, a, b: t @ b, lambda t, o, a, b: a @ t]
)


def _reduced_dims(dim, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(sorted(d % ndim for d in dims)) if ndim else ()


def _expand_back(g: Tensor, x: Tensor, dim, keepdim: bool) -> Tensor:
    """Broadcast the gradient of a reduction back to the input's shape."""
    if not keepdim:
        for d in _reduced_dims(dim, x.dim()):
            g = g.unsqueeze(d)
    return g.expand(x.shape)


def _count(x: Tensor, dim) -> int:
    return math.prod(x.shape[d] for d in _reduced_dims(dim, x.dim()))


def _reduction(method: str) -> Callable:
    """x.sum / x.mean over ``dim`` (None: all dims), the forward of a reduction primitive."""

    def fwd(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
        if dim is None and not keepdim:
            return getattr(x, method)()
        return getattr(x, method)(dim=_reduced_dims(dim, x.dim()), keepdim=keepdim)

    return fwd


_sum_fwd, _mean_fwd = _reduction("sum"), _reduction("mean")
_sum = _Primitive(
    "sum",
    _sum_fwd,
    [lambda g, o, x, dim=None, keepdim=False: _expand_back(g, x, dim, keepdim)],
    [lambda t, o, x, dim=None, keepdim=False: _sum_fwd(t, dim, keepdim)],
)
_mean = _Primitive(
    "mean",
    _mean_fwd,
    [lambda g, o, x, dim=None, keepdim=False: _expand_back(g, x, dim, keepdim) / _count(x, dim)],
    [lambda t, o, x, dim=None, keepdim=False: _mean_fwd(t, dim, keepdim)],
)
_reshape = _Primitive(
    "reshape",
    lambda x, shape: x.reshape(shape),
    [lambda g, o, x, shape: g.reshape(x.shape)],
    [lambda t, o, x, shape: t.reshape(shape)],
)
_transpose = _Primitive(
    "transpose",
    lambda x, d0, d1: x.transpose(d0, d1),
    [lambda g, o, x, d0, d1: g.transpose(d0, d1)],
    [lambda t, o, x, d0, d1: t.transpose(d0, d1)],
)


def sum(x, dim=None, keepdim: bool = False):
    """Sum over ``dim`` (int, tuple or None for all dims), as torch.sum."""
    return _sum(x, dim=dim, keepdim=keepdim)


def mean(x, dim=None, keepdim: bool = False):
    """Mean over ``dim`` (int, tuple or None for all dims), as torch.mean."""
    return _mean(x, dim=dim, keepdim=keepdim)


def reshape(x, shape):
    """Reshape to ``shape`` (a tuple; -1 allowed)."""
    return _reshape(x, shape=tuple(shape))


def transpose(x, d0: int, d1: int):
    """Swap dims d0 and d1."""
    return _transpose(x, d0=d0, d1=d1)
