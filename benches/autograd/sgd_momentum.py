"""2.04 SGD with momentum (and Nesterov), from scratch.

Update (torch.optim.SGD docs; Sutskever et al. 2013 for Nesterov), per parameter p with
gradient g:

    g <- g + weight_decay p
    b <- g on the first step, else b <- momentum b + (1 - dampening) g
    g <- g + momentum b (Nesterov) else g <- b
    p <- p - lr g

The first step *copies* g into the buffer: a buffer started at zero and updated by the
second line gives (1 - dampening) g instead, and the trajectories part from step one on.

Compared (``kernels.optim.optimizers.SGD``), the variants timed per optimizer step:

* ``torch_foreach`` (baseline): ``torch.optim.SGD(foreach=True)``, the multi-tensor path.
* ``torch_loop``: ``torch.optim.SGD(foreach=False)``, torch's single-tensor loop.
* ``loop``: the hand-written per-tensor loop (a few in-place ops per parameter).
* ``foreach``: the hand-written multi-tensor version on ``torch._foreach_*`` ops, one op over
  the whole list of tensors per (device, dtype) group.

Check (float64 to 1e-12: the same ops in the same order give the same bits; float32 to the
dtype table): over 50 mini-batch steps of an MLP 64-32-16-10 on sklearn's 8x8 digits the
parameters after every step equal torch.optim.SGD's, for momentum 0.9, Nesterov, dampening
0.1 (which exposes a wrongly initialised buffer) and weight decay 1e-2; a table of the
largest deviations goes into the report. Bad input raises ValueError as torch does.

Bench: one ``step()`` on 10M parameters in 104 tensors (52 Linear(440, 440) layers,
gradients fixed; heavy-ball and Nesterov), and on 0.53M parameters in 1,000 tensors (where
per-tensor overhead dominates), after one untimed step that creates the momentum buffers.

Lesson: on 10M parameters a heavy-ball step is memory-bound (p, g, b read, b, p written) and
loop and foreach tie: on CPU a foreach op is a C++ loop over per-tensor kernels, not one
fused kernel. With Nesterov the look-ahead g + momentum b is computed out of place, and an
out-of-place ``_foreach_add`` allocates all 104 results at once where the loop allocates one
tensor's worth, frees it and reuses it warm. With 1,000 small tensors the per-tensor Python
overhead is the cost, and the foreach paths win (the hand foreach less: it still walks the
list in Python to find first-step buffers). On a GPU the foreach path also saves kernel
launches, which is where it earns its default ("foreach > for-loop": PyTorch docs,
``torch.optim``, "Algorithms").
"""

from __future__ import annotations

import dataclasses

import torch

import kernels.optim.optimizers as hand_optim
from harness import Comparison, Prepared, Tolerance, task
from harness.checks import tolerance_for
from harness.claims import speedup, time_ratio
from harness.data.digits import digits_features
from harness.mutants import Mutant
from kernels.optim.trajectory import bench_parameters, first_deviation, optimizer_trajectory
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class SGDBenchConfig:
    """One SGD step over the parameters of ``n_layers`` Linear(width, width) layers."""

    n_layers: int
    """Linear layers: 2 * n_layers parameter tensors (weight and bias)"""
    width: int
    """features in and out of each layer; width * (width + 1) parameters per layer"""
    nesterov: bool = False
    """Nesterov momentum instead of the heavy-ball form"""
    momentum: float = 0.9
    """momentum coefficient"""
    lr: float = 1e-3
    """learning rate (small: the timed step is repeated thousands of times on fixed gradients)"""

    def label(self) -> str:
        n = self.n_layers * self.width * (self.width + 1)
        return f"{n / 1e6:.2g}M params in {2 * self.n_layers} tensors" + (",nesterov" if self.nesterov else "")


#: Hyper-parameter cases of the trajectory check (lr 0.1 everywhere).
CASES: dict[str, dict] = {
    "momentum": dict(momentum=0.9),
    "nesterov": dict(momentum=0.9, nesterov=True),
    "dampening": dict(momentum=0.9, dampening=0.1),
    "weight_decay": dict(momentum=0.9, weight_decay=1e-2),
}
STEPS = 50
LR = 0.1


def small_mlp(seed: int, device, dtype) -> MLP:
    torch.manual_seed(seed)
    return MLP(MLPConfig(in_features=64, hidden=(32, 16), out_features=10, activation="tanh")).to(device, dtype)


# -- wrong optimizers, declared as mutants below ------------------------------------------
class _ZeroInitSGD(hand_optim.SGD):
    """Momentum buffer started at zero and updated by b <- m b + (1 - dampening) g: the first
    buffer is (1 - dampening) g instead of g. Identical to torch unless dampening != 0."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(g, alpha=1 - group["dampening"])
                g = g.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.add_(g, alpha=-group["lr"])


class _NesterovOldBuffer(hand_optim.SGD):
    """Nesterov look-ahead along the buffer *before* this step's update."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                old = st.get("momentum_buffer")
                new = g.clone() if old is None else old * group["momentum"] + (1 - group["dampening"]) * g
                st["momentum_buffer"] = new
                ahead = old if (group["nesterov"] and old is not None) else new
                p.add_(g.add(ahead, alpha=group["momentum"]) if group["nesterov"] else new, alpha=-group["lr"])


def _foreach_is(opt_cls):
    """``make_optimizer`` whose ``foreach`` variant is ``opt_cls``."""

    def make_optimizer(self, variant, params, **hp):
        return (
            opt_cls(params, **hp) if variant == "foreach" else SGDMomentum.make_optimizer(self, variant, params, **hp)
        )

    return make_optimizer


@task("autograd.sgd_momentum", seed="2.04", title="SGD with momentum (and Nesterov) optimizer")
class SGDMomentum(Comparison):
    __doc__ = __doc__
    variants = ("torch_foreach", "torch_loop", "loop", "foreach")
    check_dtypes = (torch.float64, torch.float32)
    # float64: the hand optimizer runs torch's ops in torch's order, so 1e-12 is room to spare
    tolerances = {torch.float64: Tolerance(rtol=1e-12, atol=1e-12)}
    sizes = {
        "tiny": SGDBenchConfig(4, 32),
        # issue 3's model (~10M parameters in 100+ tensors), and many small tensors (per-tensor overhead)
        "cpu": [SGDBenchConfig(52, 440), SGDBenchConfig(52, 440, nesterov=True), SGDBenchConfig(500, 32)],
        "gpu": [SGDBenchConfig(52, 440), SGDBenchConfig(52, 1024), SGDBenchConfig(52, 1024, nesterov=True)],
    }
    claims = (
        speedup(
            "torch_foreach",
            over="loop",
            at_least=2,
            config="1000 tensors",
            text="1,000 small tensors: torch's foreach step >= 2x the hand per-tensor loop",
        ),
        time_ratio(
            "foreach",
            to="torch_foreach",
            at_most=1.5,
            config="10M params in 104 tensors",
            text="10M params, heavy ball (memory-bound): the hand foreach within 1.5x of torch's",
        ),
    )
    mutants = (
        Mutant(
            "zero_init_buffer",
            "momentum buffer starts at 0, first update (1 - dampening) g",
            {"make_optimizer": _foreach_is(_ZeroInitSGD)},
            match="dampening",
        ),
        Mutant(
            "nesterov_stale_buffer",
            "Nesterov looks ahead along the previous buffer",
            {"make_optimizer": _foreach_is(_NesterovOldBuffer)},
            match="nesterov",
        ),
    )

    def make_optimizer(self, variant: str, params, **hp) -> torch.optim.Optimizer:
        """The optimizer of a variant; the mutants swap in wrong ones."""
        if variant.startswith("torch_"):
            return torch.optim.SGD(params, foreach=variant == "torch_foreach", **hp)
        return hand_optim.SGD(params, foreach=variant == "foreach", **hp)

    def _trajectory(self, variant: str, case: dict, ctx, seed: int) -> torch.Tensor:
        x, y = digits_features(torch.float64)
        model = small_mlp(seed, ctx.device, ctx.dtype)
        opt = self.make_optimizer(variant, model.parameters(), lr=LR, **case)
        return optimizer_trajectory(
            model, opt, x.to(ctx.device, ctx.dtype), y.to(ctx.device), steps=STEPS, batch=32, seed=seed
        )

    def check(self, ctx) -> None:
        rows, dt = [], str(ctx.dtype).replace("torch.", "")
        tl = self.tolerances.get(ctx.dtype) or tolerance_for(ctx.dtype)
        tol = dict(rtol=tl.rtol, atol=tl.atol)
        for case_name, case in CASES.items():
            ref = self._trajectory("torch_loop", case, ctx, ctx.rng_seed)  # (STEPS, P)
            for variant in ("loop", "foreach"):
                traj = self._trajectory(variant, case, ctx, ctx.rng_seed)
                ctx.assert_close(
                    traj,
                    ref,
                    name=f"{variant} trajectory = torch.optim.SGD",
                    where=f"{case_name} {case}, {ctx.dtype}, {first_deviation(traj, ref, **tol)}",
                )
                dev = float((traj - ref).abs().max())
                rows.append({"case": case_name, "variant": variant, "dtype": dt, "steps": STEPS, "max_abs_dev": dev})
        ctx.table(f"largest parameter deviation from torch.optim.SGD over {STEPS} steps ({dt})", rows)
        p = [torch.nn.Parameter(torch.zeros(3))]
        ctx.expect_raises(
            ValueError, lambda: hand_optim.SGD(p, lr=-0.1), match="learning rate", name="negative lr rejected"
        )
        for name, make, match in (
            ("Nesterov without momentum rejected", lambda: hand_optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
            (
                "non-leaf parameter rejected",
                lambda: hand_optim.SGD([torch.zeros(3, requires_grad=True) * 2], lr=0.1),
                "leaf",
            ),
        ):
            ctx.expect_raises(ValueError, make, match=match, name=name)

    # -- bench ----------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: SGDBenchConfig) -> Prepared:
        params = bench_parameters(config.n_layers, config.width, device=ctx.device, dtype=ctx.dtype, seed=ctx.rng_seed)
        opt = self.make_optimizer(impl, params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
        opt.step()  # creates the momentum buffers: time the steady state
        n = sum(p.numel() for p in params)
        # per parameter: read p, g, b; write b, p (float32: 20 bytes); Nesterov reads g and b once more
        el = torch.empty((), dtype=ctx.dtype).element_size()
        return Prepared(fn=opt.step, bytes=n * el * (7 if config.nesterov else 5))
