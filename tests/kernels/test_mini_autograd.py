"""kernels/autograd/mini_autograd.py (+ _ops): vjp / jvp / grad equal torch.func on composite functions."""

import pytest
import torch

import kernels.autograd.mini_autograd as ma
from kernels.autograd.mini_autograd_ops import _Primitive, _unbroadcast

D = torch.float64


def _r(seed, *shape, positive=False):
    t = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=D)
    return t.abs() + 0.5 if positive else t


# name -> (mini_autograd version, torch version, primals); both written the same way so
# the *engine* is what differs
FUNCS = {
    "trig_poly": (
        lambda x: ma.sin(x) * ma.cos(x) + x**2 - 3 * x,
        lambda x: torch.sin(x) * torch.cos(x) + x**2 - 3 * x,
        [_r(0, 3, 4)],
    ),
    "mlp_tanh": (
        lambda x, w1, b1, w2: ma.tanh(x @ w1 + b1) @ w2,
        lambda x, w1, b1, w2: torch.tanh(x @ w1 + b1) @ w2,
        [_r(1, 5, 3), _r(2, 3, 4), _r(3, 4), _r(4, 4, 2)],
    ),
    "softmax_by_hand": (
        lambda x: ma.exp(x) / ma.sum(ma.exp(x), -1, True),
        lambda x: torch.exp(x) / torch.exp(x).sum(-1, keepdim=True),
        [_r(5, 3, 4)],
    ),
    "mse_linear": (
        lambda x, w, y: ma.mean((x @ w - y) ** 2),
        lambda x, w, y: ((x @ w - y) ** 2).mean(),
        [_r(6, 6, 3), _r(7, 3), _r(8, 6)],
    ),
    "relu_layer": (
        lambda x, w: ma.relu(x @ w).sum(0),
        lambda x, w: torch.relu(x @ w).sum(0),
        [_r(9, 4, 3), _r(10, 3, 5)],
    ),
    "swish_rdiv": (lambda x: x / (1 + ma.exp(-x)), lambda x: x / (1 + torch.exp(-x)), [_r(11, 7)]),
    "pow_tensor_exponent": (lambda x, y: ma.exp(x) ** y, lambda x, y: torch.exp(x) ** y, [_r(12, 3, 1), _r(13, 4)]),
    "rpow_rsub_rdiv": (
        lambda y: 2.0**y - 1 / y + (5 - y),
        lambda y: 2.0**y - 1 / y + (5 - y),
        [_r(14, 5, positive=True)],
    ),
    "broadcast_outer_log": (
        lambda a, b: ma.log(1 + a.reshape(3, 1) ** 2) * b.reshape(1, 4),
        lambda a, b: torch.log(1 + a.reshape(3, 1) ** 2) * b.reshape(1, 4),
        [_r(15, 3), _r(16, 4)],
    ),
    "batched_matmul_mean": (
        lambda a, b: ma.mean(a @ b, dim=(0, 2)),
        lambda a, b: (a @ b).mean(dim=(0, 2)),
        [_r(17, 2, 3, 4), _r(18, 4, 5)],
    ),
    "vector_matmuls": (
        lambda a, m, b: (a @ m) @ b + a @ a,
        lambda a, m, b: (a @ m) @ b + a @ a,
        [_r(19, 3), _r(20, 3, 4), _r(21, 4)],
    ),
    "layer_norm_by_hand": (
        lambda x: (x - ma.mean(x, -1, True)) / (ma.mean((x - ma.mean(x, -1, True)) ** 2, -1, True) + 1e-5) ** 0.5,
        lambda x: (
            (x - x.mean(-1, keepdim=True))
            / (((x - x.mean(-1, keepdim=True)) ** 2).mean(-1, keepdim=True) + 1e-5) ** 0.5
        ),
        [_r(22, 3, 6)],
    ),
    "transpose_gram": (
        lambda x: ma.transpose(x, 0, 1) @ x - ma.neg(x.T @ x) / 2,
        lambda x: x.T @ x + (x.T @ x) / 2,
        [_r(23, 4, 3)],
    ),
    "scalar_broadcast_sub_div": (
        lambda s, x: (x - s) / (s * s + 1),
        lambda s, x: (x - s) / (s * s + 1),
        [_r(24), _r(25, 2, 3)],
    ),
    "sum_keepdim_chain": (
        lambda x: ma.sum(ma.sin(x), dim=1, keepdim=True) * ma.cos(x).mean(),
        lambda x: torch.sin(x).sum(dim=1, keepdim=True) * torch.cos(x).mean(),
        [_r(26, 3, 4, 2)],
    ),
}


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_vjp_equals_torch_func(name):
    f, ref, primals = FUNCS[name]
    out, vjp_fn = ma.vjp(f, *primals)
    rout, rvjp = torch.func.vjp(ref, *primals)
    torch.testing.assert_close(out, rout, rtol=1e-12, atol=1e-12)
    cot = torch.randn(rout.shape, dtype=D, generator=torch.Generator().manual_seed(99))
    mine, theirs = vjp_fn(cot), rvjp(cot)
    assert len(mine) == len(primals)
    for a, b, p in zip(mine, theirs, primals):
        assert a.shape == p.shape
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_jvp_equals_torch_func(name):
    f, ref, primals = FUNCS[name]
    gen = torch.Generator().manual_seed(7)
    tangents = tuple(torch.randn(p.shape, dtype=D, generator=gen) for p in primals)
    out, t_out = ma.jvp(f, tuple(primals), tangents)
    rout, rt = torch.func.jvp(ref, tuple(primals), tangents)
    torch.testing.assert_close(out, rout, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t_out, rt, rtol=1e-12, atol=1e-12)


def test_grad_and_value_and_grad_equal_torch_func():
    f = lambda w, x: ma.sum(ma.tanh(x @ w) ** 2)  # noqa: E731
    fr = lambda w, x: (torch.tanh(x @ w) ** 2).sum()  # noqa: E731
    w, x = _r(30, 3), _r(31, 5, 3)
    torch.testing.assert_close(ma.grad(f)(w, x), torch.func.grad(fr)(w, x), rtol=1e-12, atol=1e-12)
    gw, gx = ma.grad(f, argnums=(0, 1))(w, x)
    rw, rx = torch.func.grad(fr, argnums=(0, 1))(w, x)
    torch.testing.assert_close(gw, rw, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, rx, rtol=1e-12, atol=1e-12)
    v, g = ma.value_and_grad(f, 1)(w, x)
    torch.testing.assert_close(v, fr(w, x))
    torch.testing.assert_close(g, rx, rtol=1e-12, atol=1e-12)


def test_jvp_agrees_with_vjp_by_duality():
    # <J t, c> == <t, J^T c> for the mini engine alone
    f, _, primals = FUNCS["mlp_tanh"]
    gen = torch.Generator().manual_seed(5)
    ts = tuple(torch.randn(p.shape, dtype=D, generator=gen) for p in primals)
    out, jt = ma.jvp(f, tuple(primals), ts)
    c = torch.randn(out.shape, dtype=D, generator=gen)
    _, vjp_fn = ma.vjp(f, *primals)
    lhs = (jt * c).sum()
    rhs = sum((t * g).sum() for t, g in zip(ts, vjp_fn(c)))
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_tuple_outputs_unused_inputs_and_constants():
    def f(x, y, unused):
        return ma.sin(x) * 2.0, x * y + torch.ones(3, dtype=D)

    def fr(x, y, unused):
        return torch.sin(x) * 2.0, x * y + torch.ones(3, dtype=D)

    p = (_r(40, 3), _r(41, 3), _r(42, 2))
    (o1, o2), fn = ma.vjp(f, *p)
    (r1, r2), rfn = torch.func.vjp(fr, *p)
    c = (_r(43, 3), _r(44, 3))
    for a, b in zip(fn(c), rfn(c)):
        torch.testing.assert_close(a, b)
    assert torch.equal(fn(c)[2], torch.zeros(2, dtype=D))
    (_, _), (t1, t2) = ma.jvp(f, p, tuple(torch.ones_like(x) for x in p))
    (_, _), (q1, q2) = torch.func.jvp(fr, p, tuple(torch.ones_like(x) for x in p))
    torch.testing.assert_close(t1, q1)
    torch.testing.assert_close(t2, q2)


def test_pow_edge_cases_match_torch_func():
    x = torch.tensor([0.0, 1.5, 2.0], dtype=D)
    for f, fr in [
        (lambda a: a**2, lambda a: a**2),
        (lambda a: a**0, lambda a: a**0),
        (lambda a: ma.sum(0.0**a), lambda a: (0.0**a).sum()),
    ]:
        _, fn = ma.vjp(f, x)
        out, rfn = torch.func.vjp(fr, x)
        c = torch.ones_like(out)
        torch.testing.assert_close(fn(c)[0], rfn(c)[0], equal_nan=True)


def test_never_calls_torch_autograd(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("torch.autograd / torch.func was called")

    for mod, name in [
        (torch.autograd, "grad"),
        (torch.autograd, "backward"),
        (torch.Tensor, "backward"),
        (torch.func, "vjp"),
        (torch.func, "jvp"),
        (torch.func, "grad"),
    ]:
        monkeypatch.setattr(mod, name, boom)
    f, _, primals = FUNCS["mlp_tanh"]
    primals = [p.clone().requires_grad_() for p in primals]  # even when inputs require grad
    out, fn = ma.vjp(f, *primals)
    grads = fn(torch.ones_like(out))
    assert out.grad_fn is None and all(g.grad_fn is None and not g.requires_grad for g in grads)
    _, t = ma.jvp(f, tuple(primals), tuple(torch.ones_like(p) for p in primals))
    assert t.grad_fn is None


def test_deep_chain_does_not_hit_recursion_limit():
    def f(x):
        for _ in range(3000):
            x = x * 1.0001
        return ma.sum(x)

    g = ma.grad(f)(torch.ones(2, dtype=D))
    torch.testing.assert_close(g, torch.full((2,), 1.0001**3000, dtype=D))


# ---------------------------------------------------------------- planted bugs


def test_planted_wrong_sin_rule_is_caught():
    bad_sin = _Primitive(
        "sin",
        torch.sin,
        [lambda g, o, x: -g * x.cos()],  # sign error
        [lambda t, o, x: -t * x.cos()],
    )
    x = _r(50, 4)
    _, fn = ma.vjp(lambda a: bad_sin(a) * a, x)
    _, rfn = torch.func.vjp(lambda a: torch.sin(a) * a, x)
    c = torch.ones(4, dtype=D)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(fn(c)[0], rfn(c)[0])
    _, t = ma.jvp(lambda a: bad_sin(a) * a, (x,), (c,))
    _, rt = torch.func.jvp(lambda a: torch.sin(a) * a, (x,), (c,))
    with pytest.raises(AssertionError):
        torch.testing.assert_close(t, rt)


def test_planted_missing_unbroadcast_is_caught():
    # an add whose vjp forgets to sum the gradient back over broadcast dims
    bad_add = _Primitive(
        "add",
        lambda x, y: x + y,
        [lambda g, o, x, y: g, lambda g, o, x, y: g],
        [lambda t, o, x, y: t, lambda t, o, x, y: t],
    )
    x, b = _r(51, 3, 4), _r(52, 4)
    _, fn = ma.vjp(lambda u, v: bad_add(u, v), x, b)
    _, rfn = torch.func.vjp(lambda u, v: u + v, x, b)
    c = torch.ones(3, 4, dtype=D)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(fn(c)[1], rfn(c)[1])
    assert _unbroadcast(c, torch.Size([4])).shape == (4,)


# ---------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    x = _r(60, 3)
    with pytest.raises(TypeError, match="tensors"):
        ma.vjp(lambda a: a, [1.0, 2.0])
    with pytest.raises(TypeError, match="floating"):
        ma.vjp(lambda a: a, torch.arange(3))
    _, fn = ma.vjp(lambda a: a * 2, x)
    with pytest.raises(ValueError, match="cotangent shape"):
        fn(torch.ones(4, dtype=D))
    with pytest.raises(ValueError, match="tangent shape"):
        ma.jvp(lambda a: a, (x,), (torch.ones(2, dtype=D),))
    with pytest.raises(ValueError, match="primals"):
        ma.jvp(lambda a: a, (x,), ())
    with pytest.raises(ValueError, match="single element"):
        ma.grad(lambda a: a * 2)(x)
    with pytest.raises(TypeError, match="nested"):
        ma.vjp(lambda a: ma.jvp(lambda b: b * a, (x,), (x,))[1], x)
