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

Check (float64 to rtol = atol = 1e-12, tighter than the table because the same ops in the
same order must give the same bits; float32 to the dtype table): over 50 mini-batch steps of
an MLP 64-32-16-10 (tanh) on sklearn's real 8x8 digits, the parameters after every step
equal torch.optim.SGD's, for momentum 0.9, Nesterov, dampening 0.1 (the case that exposes a
wrongly initialised buffer) and weight decay 1e-2 with momentum; a table of the largest
deviation per case, variant and dtype goes into the report. Bad input (negative lr,
Nesterov without momentum, a non-leaf parameter) raises ValueError as torch does.

Bench: one ``step()`` on 10,091,040 parameters in 104 tensors (52 Linear(440, 440) layers,
gradients fixed; heavy-ball and Nesterov), and on 528,000 parameters in 1,000 tensors (where
per-tensor overhead dominates), after one untimed step that creates the momentum buffers.
Metrics ``time_ratio_<variant>_over_torch_foreach_config<i>`` give time / torch-foreach time.

Lesson (2-core shared CPU VM, OMP_NUM_THREADS=1, float32, ``drills bench --task
autograd.sgd_momentum --no-save``; load average ~8 from other jobs, so each figure is the best
median of three runs and differences under ~1.3x are noise): 10M params in 104 tensors:
torch_foreach 15.0 ms, torch_loop 11.1, loop 15.0, foreach 12.7 (time ratios to torch foreach
0.74 / 1.00 / 0.84); Nesterov: 17.0 / 14.1 / 20.0 / 22.4 ms; 0.53M params in 1,000 tensors:
5.5 / 9.3 / 17.7 / 9.9 ms (ratios 1.7 / 3.2 / 1.8). On 10M parameters a heavy-ball step is
memory-bound (p, g, b read, b, p written: 200 MB, 13-18 GB/s here) and loop and foreach tie:
on CPU a foreach op is a C++ loop over per-tensor kernels, not one fused kernel. With Nesterov
the foreach versions (torch's and the hand one) were the slowest in all three runs: the
look-ahead g + momentum b is computed out of place, and ``_foreach_add`` allocates all 104
results (40 MB) at once, where the loop allocates one tensor's worth, frees it and reuses it
warm. Measured alone on this machine: out-of-place ``_foreach_add`` then ``_foreach_add_``
took 93-105 ms against 18-23 ms for the same arithmetic as a per-tensor loop, and 26-30 ms
for two in-place foreach ops. With 1,000 small tensors the per-tensor Python overhead is
the cost: torch's foreach is 3x faster than the Python loop and the hand foreach 1.8x (it
still walks the list in Python to find first-step buffers). On a GPU the foreach path also
fuses launches, which is where it earns its default.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

import kernels.optim.optimizers as hand_optim
from harness import Comparison, Prepared, Tolerance, task
from harness.checks import tolerance_for
from harness.task import config_label
from kernels.optim.trajectory import bench_parameters, first_deviation, optimizer_trajectory, time_ratios
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


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from harness.data.tabular import load_digits_images

    images, labels = load_digits_images()
    return images.reshape(-1, 64).double() / 16.0, labels  # (1797, 64) in [0, 1], (1797,)


def small_mlp(seed: int, device, dtype) -> MLP:
    torch.manual_seed(seed)
    return MLP(MLPConfig(in_features=64, hidden=(32, 16), out_features=10, activation="tanh")).to(device, dtype)


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

    def make_optimizer(self, variant: str, params, **hp) -> torch.optim.Optimizer:
        """The optimizer of a variant; a test swaps in a wrong one."""
        if variant.startswith("torch_"):
            return torch.optim.SGD(params, foreach=variant == "torch_foreach", **hp)
        return hand_optim.SGD(params, foreach=variant == "foreach", **hp)

    def _trajectory(self, variant: str, case: dict, ctx, seed: int) -> torch.Tensor:
        x, y = _digits()
        model = small_mlp(seed, ctx.device, ctx.dtype)
        opt = self.make_optimizer(variant, model.parameters(), lr=LR, **case)
        return optimizer_trajectory(
            model, opt, x.to(ctx.device, ctx.dtype), y.to(ctx.device), steps=STEPS, batch=32, seed=seed
        )

    def check(self, ctx) -> None:
        rows = []
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
                rows.append(
                    {
                        "case": case_name,
                        "variant": variant,
                        "dtype": str(ctx.dtype).replace("torch.", ""),
                        "steps": STEPS,
                        "max_abs_dev": float((traj - ref).abs().max()),
                    }
                )
        ctx.table(
            f"largest parameter deviation from torch.optim.SGD over {STEPS} steps "
            f"({str(ctx.dtype).replace('torch.', '')})",
            rows,
        )
        p = [torch.nn.Parameter(torch.zeros(3))]
        ctx.expect_raises(
            ValueError, lambda: hand_optim.SGD(p, lr=-0.1), match="learning rate", name="negative lr rejected"
        )
        ctx.expect_raises(
            ValueError,
            lambda: hand_optim.SGD(p, lr=0.1, nesterov=True),
            match="Nesterov",
            name="Nesterov without momentum rejected",
        )
        ctx.expect_raises(
            ValueError,
            lambda: hand_optim.SGD([torch.zeros(3, requires_grad=True) * 2], lr=0.1),
            match="leaf",
            name="non-leaf parameter rejected",
        )

    # -- bench ----------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: SGDBenchConfig) -> Prepared:
        params = bench_parameters(config.n_layers, config.width, device=ctx.device, dtype=ctx.dtype, seed=ctx.rng_seed)
        opt = self.make_optimizer(impl, params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
        opt.step()  # creates the momentum buffers: time the steady state
        n = sum(p.numel() for p in params)
        # per parameter: read p, g, b; write b, p (float32: 20 bytes); Nesterov reads g and b once more
        el = torch.empty((), dtype=ctx.dtype).element_size()
        return Prepared(fn=opt.step, bytes=n * el * (7 if config.nesterov else 5))

    def bench(self, ctx) -> None:
        super().bench(ctx)
        for name, value in time_ratios(
            ctx.record.measurements, [config_label(c) for c in ctx.configs], "torch_foreach"
        ).items():
            ctx.metric(name, value)
