"""2.04 SGD with momentum (and Nesterov), from scratch.

Update per parameter p with gradient g (torch.optim.SGD docs; Sutskever et al. 2013 for Nesterov):

    g <- g + weight_decay p
    b <- g on the first step, else b <- momentum b + (1 - dampening) g
    g <- g + momentum b (Nesterov) else g <- b
    p <- p - lr g

The first step *copies* g into the buffer: a buffer started at zero and updated by the second
line gives (1 - dampening) g instead, and the trajectories part from step one on.

Compared, each timed per ``step()`` (fixed gradients, momentum buffers made by an untimed step):
``torch.optim.SGD`` with ``foreach=True`` (``torch_foreach``, the baseline: the multi-tensor path)
and ``foreach=False`` (``torch_loop``), and :class:`kernels.optim.optimizers.SGD` as a per-tensor
loop (``loop``) and on ``torch._foreach_*`` ops (``foreach``: one op per (device, dtype) group).

Lesson: on 10M parameters a heavy-ball step is memory-bound (p, g, b read, b, p written) and loop
and foreach tie: on CPU a foreach op is a C++ loop over per-tensor kernels, not one fused kernel.
With Nesterov the look-ahead g + momentum b is computed out of place, and an out-of-place
``_foreach_add`` allocates all 104 results at once where the loop allocates one tensor's worth,
frees it and reuses it warm. With 1,000 small tensors the per-tensor Python overhead is the
cost, and the foreach paths win (the hand foreach less: it still walks the list in Python to
find first-step buffers). On a GPU the foreach path also saves kernel launches, which is where
it earns its default ("foreach > for-loop": PyTorch docs, ``torch.optim``, "Algorithms").
"""

from __future__ import annotations

import dataclasses

import torch

import kernels.optim.optimizers as hand_optim
from harness import Comparison, Prepared, Tolerance, task
from harness.claims import speedup, time_ratio
from harness.data.digits import digits_features
from harness.mutants import Mutant
from kernels.optim import wrong
from kernels.optim.trajectory import bench_parameters, expect_trajectories, optimizer_trajectory
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


CASES: dict[str, dict] = {  # hyper-parameter cases of the trajectory check (lr 0.1 everywhere)
    "momentum": dict(momentum=0.9),
    "nesterov": dict(momentum=0.9, nesterov=True),
    "dampening": dict(momentum=0.9, dampening=0.1),
    "weight_decay": dict(momentum=0.9, weight_decay=1e-2),
}
STEPS, LR = 50, 0.1


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
            {"foreach_cls": wrong.ZeroInitBufferSGD},
            match="dampening",
        ),
        Mutant(
            "nesterov_stale_buffer",
            "Nesterov looks ahead along the previous buffer",
            {"foreach_cls": wrong.NesterovStaleBufferSGD},
            match="nesterov",
        ),
    )
    #: the hand optimizer of the ``foreach`` variant; the mutants swap in wrong ones
    foreach_cls = hand_optim.SGD

    def make_optimizer(self, variant: str, params, **hp) -> torch.optim.Optimizer:
        own = self.foreach_cls if variant == "foreach" else hand_optim.SGD
        return (torch.optim.SGD if variant.startswith("torch_") else own)(params, foreach="foreach" in variant, **hp)

    def check(self, ctx) -> None:
        def trajectory(variant: str, case: dict) -> torch.Tensor:
            """(STEPS, P): the parameters after each step, the same init and batches for every variant."""
            x, y = digits_features(torch.float64)
            torch.manual_seed(ctx.rng_seed)
            model = MLP(MLPConfig(64, hidden=(32, 16), out_features=10, activation="tanh")).to(ctx.device, ctx.dtype)
            opt = self.make_optimizer(variant, model.parameters(), lr=LR, **case)
            xd, yd = x.to(ctx.device, ctx.dtype), y.to(ctx.device)
            return optimizer_trajectory(model, opt, xd, yd, steps=STEPS, batch=32, seed=ctx.rng_seed)

        expect_trajectories(
            ctx, trajectory, CASES, ("loop", "foreach"), reference="torch_loop", against="torch.optim.SGD", steps=STEPS
        )
        p, non_leaf = [torch.nn.Parameter(torch.zeros(3))], [torch.zeros(3, requires_grad=True) * 2]
        for name, make, match in (
            ("negative lr rejected", lambda: hand_optim.SGD(p, lr=-0.1), "learning rate"),
            ("Nesterov without momentum rejected", lambda: hand_optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
            ("non-leaf parameter rejected", lambda: hand_optim.SGD(non_leaf, lr=0.1), "leaf"),
        ):
            ctx.expect_raises(ValueError, make, match=match, name=name)

    def prepare(self, ctx, impl: str, config: SGDBenchConfig) -> Prepared:
        params = bench_parameters(config.n_layers, config.width, device=ctx.device, dtype=ctx.dtype, seed=ctx.rng_seed)
        opt = self.make_optimizer(impl, params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
        opt.step()  # creates the momentum buffers: time the steady state
        n_bytes = sum(p.numel() for p in params) * params[0].element_size()
        # per parameter: read p, g, b; write b, p (float32: 20 bytes); Nesterov reads g and b once more
        return Prepared(fn=opt.step, bytes=n_bytes * (7 if config.nesterov else 5))
