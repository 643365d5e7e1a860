"""m1 A mini autograd engine with vjp and jvp.

``kernels/autograd/mini_autograd.py`` differentiates with its own rules only (torch tensors are the
numeric backend, no ``torch.autograd``): reverse mode records a graph of boxes and walks it
backwards (``vjp``), forward mode carries (value, tangent) pairs (``jvp``); ``grad`` is the
vjp of a scalar function with cotangent 1.

Check (float64 and float32): 14 composite functions, each written *once* with operators and
tensor methods, so the same source runs on mini-autograd boxes and on torch tensors. On
seeded primals, cotangents and tangents the output, every vjp gradient and the jvp tangent
equal ``torch.func.vjp`` / ``torch.func.jvp`` (broadcasting both ways, batched and 1-D
matmuls, reductions with and without keepdim, a tensor exponent, reshape/transpose, a tuple
output, an ignored input). ``grad`` and ``value_and_grad`` equal ``torch.func``'s on 3 scalar
functions; a cotangent of the wrong shape raises ValueError.

Bench: one vjp (forward + pullback with a fixed cotangent) and one jvp of a two-layer tanh
MLP, ``torch.func`` (baseline) vs the mini engine, for a small batch (Python overhead
dominates) and a large one (the matmuls dominate).

Lesson: on small inputs the ~10 primitive calls of a pure-Python engine cost about what
torch.func's own machinery costs (functorch wraps every tensor at each transform level and
routes each op through the dispatcher twice: "torch.func" docs, "UX limitations"); on large
ones both spend their time in the same matmul and tanh kernels. Reverse mode must record
the graph and keep the values its rules need until the pullback runs; forward mode carries
one tangent per value and frees as it goes (Baydin et al. 2018, "Automatic Differentiation
in Machine Learning: a Survey", JMLR 18).
"""

from __future__ import annotations

import dataclasses
import types

import torch
import torch.func

import kernels.autograd.mini_autograd as ma
import kernels.autograd.mini_autograd_ops as ops
from harness import Operator, impl, task
from harness.claims import time_ratio
from harness.mutants import Mutant
from harness.swapped import Swapped

_LARGE = "mini engine within 1.1x of torch.func at the largest size (the same matmul and tanh kernels)"
_SMALL = "pure-Python mini engine <= 1.5x torch.func at N=8, D=16 (Python overhead on both sides)"


def _mlp(x, w1, b1, w2):
    return (x @ w1 + b1).tanh() @ w2  # (N, H) -> (N, out)


#: name -> (function, primal shapes, primals that must stay positive); written with operators
#: and methods only, so one definition runs on mini-autograd boxes and on torch tensors
FUNCTIONS = {
    "sin_mul_broadcast": (lambda x, y: (x * y + x.sin()).sum(-1), [(3, 4), (4,)], ()),
    "mlp_tanh": (_mlp, [(5, 3), (3, 6), (6,), (6, 2)], ()),
    "softplus": (lambda x: (1 + x.exp()).log(), [(7,)], ()),
    "rational": (lambda x, y: x**3 / (1 + y * y), [(4, 3), (3,)], ()),
    "center_scale": (lambda x: (x - x.mean(-1, keepdim=True)) * 2.5, [(3, 5)], ()),
    "relu_matmul": (lambda x, w: (x @ w).relu().sum(0), [(6, 4), (4, 3)], ()),
    "reshape_transpose": (lambda x, y: x.reshape(3, 4).transpose(0, 1) * y, [(12,), (4, 1)], ()),
    "logsumexp": (lambda x: x.exp().sum(-1).log(), [(2, 5)], ()),
    "tensor_power": (lambda x, y: (x * x + 1) ** y, [(4,), (4,)], ()),
    "trig_div": (lambda x, y: x.cos() * y.sin() - x / y, [(3, 3), (3, 3)], (1,)),
    "two_outputs": (lambda x, y: (x * y, (x - y).exp().mean()), [(2, 3), (2, 3)], ()),
    "unused_input": (lambda x, y: (x * 3.0).tanh(), [(4,), (2, 2)], ()),
    "batched_matmul": (lambda a, b: (a @ b).sum(), [(2, 3, 4), (4, 5)], ()),
    "vector_matmul": (lambda v, m: v @ m @ v, [(3,), (3, 3)], ()),
}

#: scalar functions for grad: (function, primal shapes, argnums)
SCALAR_FUNCTIONS = {
    "mse_of_mlp": (lambda x, w1, b1, w2: (_mlp(x, w1, b1, w2) ** 2).mean(), [(5, 3), (3, 6), (6,), (6, 2)], (1, 2, 3)),
    "softplus_sum": (lambda x: (1 + x.exp()).log().sum(), [(7,)], 0),
    "logsumexp_total": (lambda x: x.exp().sum(-1).log().sum(), [(2, 5)], 0),
}


def _transform(eng, mode: str, primals, seeds):
    """The bench's work through ``eng`` (torch.func or the mini engine): (out, grads) or (out, tangent)."""
    if mode == "vjp":
        out, pull = eng.vjp(_mlp, *primals)
        return out, pull(seeds[0])
    return eng.jvp(_mlp, tuple(primals), tuple(seeds))


def _primals(shapes, positive, g: torch.Generator, dtype, device):
    out = []
    for i, s in enumerate(shapes):
        t = torch.randn(s, generator=g, dtype=dtype)
        out.append((t.abs() + 0.5 if i in positive else t).to(device))
    return out


def _like(x, g: torch.Generator):
    """A random tensor (or tuple of them) shaped like ``x``."""
    if isinstance(x, tuple):
        return tuple(_like(t, g) for t in x)
    return torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """One vjp or jvp of a 2-layer tanh MLP (N, D) -> (N, H) -> (N, 10)."""

    mode: str
    """'vjp' (forward + pullback) or 'jvp' (forward with tangents)"""
    batch: int
    """N: rows of x"""
    width: int
    """D = H: input and hidden features"""

    def label(self) -> str:
        return f"{self.mode},N={self.batch},D={self.width}"


# -- wrong engines (the mutants) -----------------------------------------------------------------
def _grad_seeded_2(f, argnums=0):
    """WRONG: grad pulls back a cotangent of 2, not 1."""
    vg = ma.value_and_grad(f, argnums)
    return lambda *a: (lambda gr: tuple(2 * x for x in gr) if isinstance(gr, tuple) else 2 * gr)(vg(*a)[1])


@task("m1.mini_autograd", seed="m1", title="a mini autograd engine with vjp and jvp")
class MiniAutograd(Operator):
    __doc__ = __doc__
    check_dtypes = (torch.float64, torch.float32)
    sizes = {
        "tiny": [MLPConfig("vjp", 4, 8), MLPConfig("jvp", 4, 8)],
        "cpu": [MLPConfig(mode, n, d) for n, d in ((8, 16), (512, 512)) for mode in ("vjp", "jvp")],
        "gpu": [MLPConfig("vjp", 8, 16), MLPConfig("vjp", 4096, 4096), MLPConfig("jvp", 4096, 4096)],
    }
    claims = (
        time_ratio("mini", to="torch_func", at_most=1.1, text=_LARGE),
        time_ratio("mini", to="torch_func", at_most=1.5, config="N=8,", text=_SMALL),
    )
    #: the engine under test (vjp, jvp, grad, value_and_grad); the mutants swap in wrong ones
    engine: types.ModuleType | object = ma
    mutants = (
        Mutant(
            "sin_derivative_is_sin",
            "sin's vjp rule multiplies by sin, not cos",
            {"engine": Swapped(ma, ops.sin, "vjps", (lambda g, o, x: g * x.sin(),))},
            match="vjp: gradients",
        ),
        Mutant(
            "tanh_tangent_unsquared",
            "tanh's jvp rule uses 1 - tanh, not 1 - tanh^2",
            {"engine": Swapped(ma, ops.tanh, "jvps", (lambda t, o, x: t * (1 - o),))},
            match="jvp",
        ),
        Mutant(
            "missing_unbroadcast",
            "gradients of broadcast inputs keep the output's shape",
            {"engine": Swapped(ma, ops, "_unbroadcast", lambda g, shape: g)},
            match="vjp: gradients",
        ),
        Mutant(
            "grad_cotangent_2",
            "grad seeds the pullback with 2, not 1",
            {
                "engine": types.SimpleNamespace(
                    vjp=ma.vjp, jvp=ma.jvp, grad=_grad_seeded_2, value_and_grad=ma.value_and_grad
                )
            },
            match="grad of a scalar function",
        ),
    )

    # -- operator contract: the bench function -------------------------------------------------
    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        n, d = config.batch, config.width
        primals = [
            torch.randn(s, generator=g, dtype=dtype).to(device) / (s[0] ** 0.5 if len(s) == 2 else 1)
            for s in ((n, d), (d, d), (d,), (d, 10))
        ]
        seeds = (
            [torch.randn(n, 10, generator=g, dtype=dtype).to(device)]
            if config.mode == "vjp"
            else [torch.randn(p.shape, generator=g, dtype=dtype).to(device) for p in primals]
        )
        return config.mode, primals, seeds

    def reference(self, mode, primals, seeds):
        return self.torch_func(mode, primals, seeds)()

    def flops(self, config):
        n, d = config.batch, config.width
        fwd = 2 * n * d * d + 2 * n * d * 10
        return 3 * fwd  # a forward plus a pullback/tangent pass of about twice its cost

    @impl(baseline=True)
    def torch_func(self, mode, primals, seeds):
        return lambda: _transform(torch.func, mode, primals, seeds)

    @impl
    def mini(self, mode, primals, seeds):
        return lambda: _transform(self.engine, mode, primals, seeds)

    # -- check ----------------------------------------------------------------------------------
    def check(self, ctx):
        eng = self.engine
        g = ctx.generator(1)
        for name, (fn, shapes, positive) in FUNCTIONS.items():
            for trial in range(3):
                primals = _primals(shapes, positive, g, ctx.dtype, ctx.device)
                where = f"{name}, trial {trial}"
                out_ref, pull_ref = torch.func.vjp(fn, *primals)
                cot = _like(out_ref, g)
                out, pull = eng.vjp(fn, *primals)
                ctx.assert_close(out, out_ref, name="vjp: outputs", where=where)
                ctx.assert_close(pull(cot), pull_ref(cot), name="vjp: gradients", where=where)
                tangents = tuple(_like(p, g) for p in primals)
                ctx.assert_close(
                    eng.jvp(fn, tuple(primals), tangents),
                    torch.func.jvp(fn, tuple(primals), tangents),
                    name="jvp: output and tangent",
                    where=where,
                )
        ctx.metric("composite_functions", len(FUNCTIONS))
        for name, (fn, shapes, argnums) in SCALAR_FUNCTIONS.items():
            args = _primals(shapes, (), g, ctx.dtype, ctx.device)
            ctx.assert_close(
                eng.grad(fn, argnums=argnums)(*args),
                torch.func.grad(fn, argnums=argnums)(*args),
                name="grad of a scalar function",
                where=name,
            )
            val, grads = eng.value_and_grad(fn, argnums=argnums)(*args)
            ctx.assert_close(
                (val, grads),
                torch.func.grad_and_value(fn, argnums=argnums)(*args)[::-1],
                name="value_and_grad",
                where=name,
            )
        x = torch.randn(3, 4, generator=g, dtype=ctx.dtype).to(ctx.device)
        _, pull = eng.vjp(lambda t: t.sin(), x)
        bad = torch.ones(4, 3, dtype=ctx.dtype, device=ctx.device)
        ctx.expect_raises(ValueError, lambda: pull(bad), match="shape", name="cotangent of the wrong shape rejected")
        super().check(ctx)
