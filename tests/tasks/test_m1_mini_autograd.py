"""m1.mini_autograd: vjp/jvp/grad equal torch.func; planted rule bugs in the engine are caught."""

import types

import kernels.autograd.mini_autograd as ma
import kernels.autograd.mini_autograd_ops as ops
from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m1.mini_autograd")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["composite_functions"] >= 10
    assert any(k.startswith("grad of a scalar function") for k in rec.checks)


def test_wrong_sin_derivative_is_caught(monkeypatch):
    monkeypatch.setattr(ops.sin, "vjps", (lambda g, o, x: g * x.sin(),))  # sin' = sin (should be cos)
    expect_check_fails(Task, match="vjp: gradients")


def test_wrong_tanh_tangent_is_caught(monkeypatch):
    monkeypatch.setattr(ops.tanh, "jvps", (lambda t, o, x: t * (1 - o),))  # forgets the square
    expect_check_fails(Task, match="jvp")


def test_missing_unbroadcast_is_caught(monkeypatch):
    # gradients of broadcast inputs keep the output's shape instead of summing back
    monkeypatch.setattr(ops, "_unbroadcast", lambda g, shape: g)
    expect_check_fails(Task)


def test_grad_with_wrong_seed_is_caught():
    def grad(f, argnums=0):
        vg = ma.value_and_grad(f, argnums)

        def g(*args):
            v, gr = vg(*args)
            return tuple(2 * x for x in gr) if isinstance(gr, tuple) else 2 * gr  # cotangent 2, not 1

        return g

    engine = types.SimpleNamespace(vjp=ma.vjp, jvp=ma.jvp, grad=grad, value_and_grad=ma.value_and_grad)

    class Wrong(Task):
        pass

    Wrong.engine = engine
    expect_check_fails(Wrong, match="grad of a scalar function")
