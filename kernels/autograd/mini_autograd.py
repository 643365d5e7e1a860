"""A small reverse- and forward-mode automatic differentiation engine.

torch tensors are only the *numeric backend* here: every derivative comes from the rules
in kernels/autograd/mini_autograd_ops.py, never from ``torch.autograd`` or ``torch.func`` (primal
values are detached, so no autograd graph is ever built; tests/kernels/test_mini_autograd.py
checks that with torch.autograd's entry points patched to raise).

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

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

# the primitive ops are re-exported: user code writes ma.exp, ma.sum, ... from this module
from kernels.autograd.mini_autograd_ops import (  # noqa: F401
    _Box,
    _Dual,
    _RNode,
    _unbox,
    add,
    cos,
    div,
    exp,
    log,
    matmul,
    mean,
    mul,
    neg,
    pow,
    relu,
    reshape,
    sin,
    sub,
    sum,
    tanh,
    transpose,
)

__all__ = [
    "vjp",
    "jvp",
    "grad",
    "value_and_grad",
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
                raise ValueError(
                    f"vjp_fn: cotangent shape {tuple(getattr(c, 'shape', ()))} "
                    f"does not match output shape {tuple(v.shape)}"
                )
        pairs = [(o, c) for o, c in zip(outs, cots) if isinstance(o, _RNode)]
        grads = _backprop([o for o, _ in pairs], [c for _, c in pairs]) if pairs else {}
        return tuple(grads[id(n)].contiguous() if id(n) in grads else torch.zeros_like(n.value) for n in nodes)

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
            raise ValueError(
                f"jvp: tangent shape {tuple(getattr(t, 'shape', ()))} does not match primal shape {tuple(p.shape)}"
            )
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
            raise ValueError(
                f"grad: f must return a tensor with a single element, got shape {tuple(getattr(out, 'shape', ()))}"
            )
        grads = fn(torch.ones_like(out))
        return out, (grads[0] if isinstance(argnums, int) else grads)

    return wrapped


def grad(f: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """Return g(*args) -> gradient of scalar f w.r.t. args[argnums] (like torch.func.grad)."""
    vg = value_and_grad(f, argnums)
    return lambda *args: vg(*args)[1]
