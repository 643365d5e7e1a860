"""A small reverse- and forward-mode automatic differentiation engine.

torch tensors are only the *numeric backend* here: every derivative comes from the rules
below, never from ``torch.autograd`` or ``torch.func`` (primal values are detached, so no
autograd graph is ever built; tests/kernels/test_mini_autograd.py checks that with
torch.autograd's entry points patched to raise).

Transforms (signatures as in ``torch.func``):

- ``vjp(f, *primals) -> (out, vjp_fn)``; ``vjp_fn(cotangent) -> tuple`` of one gradient
  per primal (zeros for a primal the output does not depend on). Reverse mode: f runs
  once recording a graph of ``_RNode`` boxes; ``vjp_fn`` walks it in reverse topological
  order applying each op's vector-Jacobian rule.
- ``jvp(f, primals, tangents) -> (out, tangent_out)``. Forward mode: ``_Dual`` boxes carry
  (value, tangent) pairs and each op applies its Jacobian-vector rule on the fly.
- ``grad(f, argnums=0)`` and ``value_and_grad``: gradient of a scalar-output f.

Primitive ops (use these, or the operators +, -, *, /, **, @ and unary - on boxes, inside
f; torch functions do not accept boxes): add, sub, mul, div, neg, exp, log, sin, cos,
tanh, pow, matmul, sum, mean, relu, reshape, transpose. Binary ops broadcast as torch does;
the reverse rules sum gradients back to each input's shape (``_unbroadcast``). Python
numbers and plain tensors inside f are constants.

Limits: first order only (the rules compute on raw tensors, so grad(grad(f)) is not
available); f takes and returns tensors (a tuple of outputs is allowed for vjp/jvp); reverse
and forward boxes cannot meet in one op (no nesting of transforms).

Rule sources: the derivative formulas of torch's tools/autograd/derivatives.yaml (e.g. pow's
zero-exponent and 0 ** y masks), so results equal torch.func to rounding.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

__all__ = [
    "vjp", "jvp", "grad", "value_and_grad",
    "add", "sub", "mul", "div", "neg", "exp", "log", "sin", "cos", "tanh", "pow",
    "matmul", "sum", "mean", "relu", "reshape", "transpose",
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

    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return sub(self, o)
    def __rsub__(self, o): return sub(o, self)
    def __mul__(self, o): return mul(self, o)
    def __rmul__(self, o): return mul(o, self)
    def __truediv__(self, o): return div(self, o)
    def __rtruediv__(self, o): return div(o, self)
    def __pow__(self, o): return pow(self, o)
    def __rpow__(self, o): return pow(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __neg__(self): return neg(self)

    def exp(self): return exp(self)
    def log(self): return log(self)
    def sin(self): return sin(self)
    def cos(self): return cos(self)
    def tanh(self): return tanh(self)
    def relu(self): return relu(self)
    def sum(self, dim=None, keepdim=False): return sum(self, dim, keepdim)
    def mean(self, dim=None, keepdim=False): return mean(self, dim, keepdim)
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = shape[0]  # accept x.reshape((2, 3)) as well as x.reshape(2, 3)
        return reshape(self, shape)
    def transpose(self, d0, d1): return transpose(self, d0, d1)

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
            raise TypeError(f"{self.name}: reverse- and forward-mode values met in one op; "
                            "nested vjp/jvp is not supported by mini_autograd")
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


add = _Primitive("add", lambda x, y: x + y,
                 [lambda g, o, x, y: _unbroadcast(g, _shape(x)), lambda g, o, x, y: _unbroadcast(g, _shape(y))],
                 [lambda t, o, x, y: t, lambda t, o, x, y: t])
sub = _Primitive("sub", lambda x, y: x - y,
                 [lambda g, o, x, y: _unbroadcast(g, _shape(x)), lambda g, o, x, y: _unbroadcast(-g, _shape(y))],
                 [lambda t, o, x, y: t, lambda t, o, x, y: -t])
mul = _Primitive("mul", lambda x, y: x * y,
                 [lambda g, o, x, y: _unbroadcast(g * y, _shape(x)), lambda g, o, x, y: _unbroadcast(g * x, _shape(y))],
                 [lambda t, o, x, y: t * y, lambda t, o, x, y: x * t])
div = _Primitive("div", lambda x, y: x / y,
                 [lambda g, o, x, y: _unbroadcast(g / y, _shape(x)),
                  lambda g, o, x, y: _unbroadcast(-g * x / (y * y), _shape(y))],
                 [lambda t, o, x, y: t / y, lambda t, o, x, y: -t * x / (y * y)])
neg = _Primitive("neg", torch.neg, [lambda g, o, x: -g], [lambda t, o, x: -t])
exp = _Primitive("exp", torch.exp, [lambda g, o, x: g * o], [lambda t, o, x: t * o])
log = _Primitive("log", torch.log, [lambda g, o, x: g / x], [lambda t, o, x: t / x])
sin = _Primitive("sin", torch.sin, [lambda g, o, x: g * x.cos()], [lambda t, o, x: t * x.cos()])
cos = _Primitive("cos", torch.cos, [lambda g, o, x: g * -x.sin()], [lambda t, o, x: t * -x.sin()])
tanh = _Primitive("tanh", torch.tanh, [lambda g, o, x: g * (1 - o * o)], [lambda t, o, x: t * (1 - o * o)])
# gradient passes where the *output* is > 0 (threshold_backward); NaN outputs pass none
relu = _Primitive("relu", torch.relu, [lambda g, o, x: _where0(~(o > 0), g)],
                  [lambda t, o, x: _where0(~(o > 0), t)])


def _dpow_dx(x, y, o: Tensor) -> Tensor:
    """d(x^y)/dx = y x^(y-1), and exactly 0 where y == 0 (derivatives.yaml pow_backward)."""
    d = _as_t(y, o) * torch.pow(x, _as_t(y, o) - 1)
    return _where0(_as_t(y, o) == 0, d)


def _dpow_dy(x, y, o: Tensor) -> Tensor:
    """d(x^y)/dy = x^y log x, and 0 where x == 0 and y >= 0 (pow_backward_exponent)."""
    xt = _as_t(x, o)
    return _where0((xt == 0) & (_as_t(y, o) >= 0), o * xt.log())


pow = _Primitive("pow", lambda x, y: x ** y,
                 [lambda g, o, x, y: _unbroadcast(g * _dpow_dx(x, y, o), _shape(x)),
                  lambda g, o, x, y: _unbroadcast(g * _dpow_dy(x, y, o), _shape(y))],
                 [lambda t, o, x, y: t * _dpow_dx(x, y, o), lambda t, o, x, y: t * _dpow_dy(x, y, o)])


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


matmul = _Primitive("matmul", lambda a, b: a @ b, [_matmul_vjp(0), _matmul_vjp(1)],
                    [lambda t, o, a, b: t @ b, lambda t, o, a, b: a @ t])


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


_sum = _Primitive("sum", lambda x, dim=None, keepdim=False: x.sum() if dim is None and not keepdim
                  else x.sum(dim=_reduced_dims(dim, x.dim()), keepdim=keepdim),
                  [lambda g, o, x, dim=None, keepdim=False: _expand_back(g, x, dim, keepdim)],
                  [lambda t, o, x, dim=None, keepdim=False: t.sum() if dim is None and not keepdim
                   else t.sum(dim=_reduced_dims(dim, x.dim()), keepdim=keepdim)])
_mean = _Primitive("mean", lambda x, dim=None, keepdim=False: x.mean() if dim is None and not keepdim
                   else x.mean(dim=_reduced_dims(dim, x.dim()), keepdim=keepdim),
                   [lambda g, o, x, dim=None, keepdim=False: _expand_back(g, x, dim, keepdim) / _count(x, dim)],
                   [lambda t, o, x, dim=None, keepdim=False: t.mean() if dim is None and not keepdim
                    else t.mean(dim=_reduced_dims(dim, x.dim()), keepdim=keepdim)])
_reshape = _Primitive("reshape", lambda x, shape: x.reshape(shape),
                      [lambda g, o, x, shape: g.reshape(x.shape)],
                      [lambda t, o, x, shape: t.reshape(shape)])
_transpose = _Primitive("transpose", lambda x, d0, d1: x.transpose(d0, d1),
                        [lambda g, o, x, d0, d1: g.transpose(d0, d1)],
                        [lambda t, o, x, d0, d1: t.transpose(d0, d1)])


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


# --------------------------------------------------------------------------- transforms

def _primal(x: Any, name: str) -> Tensor:
    if isinstance(x, _Box):
        raise TypeError(f"{name}: nested transforms are not supported by mini_autograd")
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: primals must be torch tensors, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: primals must be floating point, got {x.dtype}")
    return x.detach()  # never build an autograd graph


def _toposort(outputs: list[_RNode]) -> list[_RNode]:
    """Nodes reachable from ``outputs``, each after every node that consumes it."""
    seen: set[int] = set()
    order: list[_RNode] = []
    stack: list[tuple[_RNode, bool]] = [(o, False) for o in outputs]
    while stack:  # iterative DFS post-order: deep graphs must not hit the recursion limit
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for parent, _ in node.parents:
            if id(parent) not in seen:
                stack.append((parent, False))
    return order[::-1]


def _backprop(outputs: list[_RNode], cotangents: list[Tensor]) -> dict[int, Tensor]:
    grads: dict[int, Tensor] = {}
    for o, c in zip(outputs, cotangents):
        grads[id(o)] = grads[id(o)] + c if id(o) in grads else c
    for node in _toposort(outputs):
        g = grads.get(id(node))
        if g is None:
            continue
        for parent, rule in node.parents:
            c = rule(g)
            grads[id(parent)] = grads[id(parent)] + c if id(parent) in grads else c
    return grads


def vjp(f: Callable, *primals: Tensor):
    """Evaluate ``f(*primals)`` and return (out, vjp_fn) like torch.func.vjp.

    primals: floating tensors (any shapes). f returns a tensor or a tuple of tensors.
    vjp_fn(cotangent): cotangent has out's shape (a tuple for a tuple output); returns a
    tuple with one gradient per primal, each of that primal's shape.
    Raises TypeError for non-tensor primals/outputs, ValueError for a cotangent of the
    wrong shape.
    """
    nodes = [_RNode(_primal(p, "vjp")) for p in primals]
    out = f(*nodes)
    multi = isinstance(out, (tuple, list))
    outs = list(out) if multi else [out]
    for o in outs:
        if not isinstance(o, (_RNode, Tensor)):
            raise TypeError(f"vjp: f must return tensors, got {type(o).__name__}")
    values = [_unbox(o) for o in outs]

    def vjp_fn(cotangent):
        cots = list(cotangent) if multi else [cotangent]
        if len(cots) != len(values):
            raise ValueError(f"vjp_fn: expected {len(values)} cotangents, got {len(cots)}")
        for c, v in zip(cots, values):
            if not isinstance(c, Tensor) or c.shape != v.shape:
                raise ValueError(f"vjp_fn: cotangent shape {tuple(getattr(c, 'shape', ()))} "
                                 f"does not match output shape {tuple(v.shape)}")
        pairs = [(o, c) for o, c in zip(outs, cots) if isinstance(o, _RNode)]
        grads = _backprop([o for o, _ in pairs], [c for _, c in pairs]) if pairs else {}
        return tuple(grads[id(n)].contiguous() if id(n) in grads else torch.zeros_like(n.value)
                     for n in nodes)

    return (tuple(values) if multi else values[0]), vjp_fn


def jvp(f: Callable, primals: Sequence[Tensor], tangents: Sequence[Tensor]):
    """Evaluate f at ``primals`` and its directional derivative along ``tangents``.

    primals, tangents: tuples of equal length; each tangent has its primal's shape and
    dtype. Returns (out, tangent_out) like torch.func.jvp (tuples for a tuple output).
    Raises ValueError for mismatched counts or shapes.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    duals = []
    for p, t in zip(primals, tangents):
        p = _primal(p, "jvp")
        if not isinstance(t, Tensor) or t.shape != p.shape:
            raise ValueError(f"jvp: tangent shape {tuple(getattr(t, 'shape', ()))} does not match "
                             f"primal shape {tuple(p.shape)}")
        duals.append(_Dual(p, t.detach()))
    out = f(*duals)
    multi = isinstance(out, (tuple, list))
    outs = list(out) if multi else [out]
    values, tans = [], []
    for o in outs:
        if isinstance(o, _Dual):
            values.append(o.value)
            tans.append(o.tangent.contiguous() if o.tangent is not None else torch.zeros_like(o.value))
        elif isinstance(o, Tensor):
            values.append(o)
            tans.append(torch.zeros_like(o))
        else:
            raise TypeError(f"jvp: f must return tensors, got {type(o).__name__}")
    if multi:
        return tuple(values), tuple(tans)
    return values[0], tans[0]


def value_and_grad(f: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """Return g(*args) -> (f(*args), gradient w.r.t. args[argnums]) for scalar-output f.

    argnums: an int (one gradient) or a tuple of ints (a tuple of gradients).
    Raises ValueError if f's output has more than one element.
    """
    def wrapped(*args):
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        for n in nums:
            if not -len(args) <= n < len(args):
                raise ValueError(f"argnums {n} out of range for {len(args)} positional arguments")
        nums_n = [n % len(args) for n in nums]

        def g(*diff):
            full = list(args)
            for n, d in zip(nums_n, diff):
                full[n] = d
            return f(*full)

        out, fn = vjp(g, *[args[n] for n in nums_n])
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise ValueError("grad: f must return a tensor with a single element, got shape "
                             f"{tuple(getattr(out, 'shape', ()))}")
        grads = fn(torch.ones_like(out))
        return out, (grads[0] if isinstance(argnums, int) else grads)

    return wrapped


def grad(f: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """Return g(*args) -> gradient of scalar f w.r.t. args[argnums] (like torch.func.grad)."""
    vg = value_and_grad(f, argnums)
    return lambda *args: vg(*args)[1]
