"""m2 SGD, momentum, Nesterov, Adam, AdamW and RMSProp from scratch.

``kernels/optim/optimizers.py`` holds each optimizer as a per-tensor loop (``foreach=False``)
and as a multi-tensor version on ``torch._foreach_*`` ops (``foreach=True``), following the
update rules and op order of ``torch.optim`` (torch/optim/sgd.py, adam.py, rmsprop.py).

Check: 50 mini-batch steps of a 64-32-10 MLP on seeded teacher-labelled data, the same
batches and initial weights for every run, for 8 settings (SGD; momentum with dampening and
L2 decay; Nesterov; Adam with eps = 1e-6 and L2 decay, so that the *placement* of eps moves
the result; AMSGrad; AdamW; RMSProp; centered RMSProp). The own loop and foreach versions
follow ``torch.optim`` with ``foreach=False`` / ``True`` after every step: to 1e-10 relative
in float64, to the dtype table in float32 (the ``trajectory errors`` table). Bad input
(negative lr, beta1 = 1.0, beta2 = -0.1, a non-leaf parameter) raises what torch raises.

Bench: one ``step()`` on 10.1M parameters in 104 tensors (state initialised): torch foreach
(baseline), torch fused (SGD, Adam, AdamW), torch loop, own loop and own foreach; GB/s
counts the minimum traffic (each state tensor read and written once, gradients read once).

Lesson: the own versions follow torch's op order, so every trajectory is bit-identical to
torch's. On a CPU a foreach op is a C++ loop over the list running the same vectorised
kernel per tensor, so with 104 large tensors the Python overhead it saves (~1 us x 104
tensors x ~8 ops) is small against a step that streams the state several times. What wins
is fusion: torch's fused kernels do the whole update in one pass over memory where the
unfused versions make 7-10. On a GPU, where every op is a kernel launch, foreach's fewer
launches are what matters (``torch.optim`` docs, "Algorithms": for-loop, foreach and fused
implementations, and why foreach saves kernel launches).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

import kernels.optim.optimizers as own_optim
from harness import Comparison, Prepared, Tolerance, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant
from kernels.optim.bad_input import bad_input_cases, torch_error
from kernels.optim.trajectory import bench_parameters, optimizer_trajectory
from models.mlp import MLP, MLPConfig

#: setting -> (optimizer name, keyword arguments), the same for torch and own
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", dict(lr=0.1)),
    "momentum": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    "nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": ("Adam", dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=1e-3)),
    "adam_amsgrad": ("Adam", dict(lr=1e-2, amsgrad=True)),
    "adamw": ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
    "rmsprop": ("RMSprop", dict(lr=1e-3)),
    "rmsprop_centered": ("RMSprop", dict(lr=1e-3, alpha=0.9, momentum=0.5, centered=True, weight_decay=1e-3)),
}

#: bytes per parameter element moved by one step at the minimum (state read + written once)
_TRAFFIC = dict(sgd=3, momentum=5, nesterov=5, adam=7, adam_amsgrad=9, adamw=7, rmsprop=5, rmsprop_centered=9)
_FUSED = {"SGD", "Adam", "AdamW"}  # torch 2.13 CPU: fused=True exists for these only
_FOREACH = "own foreach Adam step <= 1.1x torch's foreach Adam (same ops, same order)"
_FUSED_CLAIM = "torch's fused Adam >= 2x its foreach Adam (one pass over the state instead of 7-10)"
_TRAJ = "trajectory = torch.optim"
_LOOP = "own per-tensor Adam step <= 1.1x torch's per-tensor Adam"


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """One optimizer step on ``n_layers`` Linear(width, width) weights and biases."""

    setting: str
    """a key of SETTINGS (optimizer and hyper-parameters)"""
    n_layers: int = 52
    """Linear layers: 2 * n_layers parameter tensors"""
    width: int = 440
    """features of each layer: n_layers * (width^2 + width) parameters (52, 440: 10,091,040)"""

    def label(self) -> str:
        n = self.n_layers * (self.width * self.width + self.width)
        return f"{self.setting},{n / 1e6:.1f}M params/{2 * self.n_layers} tensors"


def _data(dtype, device, seed: int = 1234):
    """x (256, 64) ~ N(0, 1) and labels of a fixed random linear teacher: a learnable task."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 64, generator=g, dtype=torch.float64)
    y = (x @ torch.randn(64, 10, generator=g, dtype=torch.float64)).argmax(-1)
    return x.to(device, dtype), y.to(device)


OWN_CLASSES: dict[str, type] = {n: getattr(own_optim, n) for n in ("SGD", "Adam", "AdamW", "RMSprop")}


def _own(**wrong: type) -> dict[str, dict[str, type]]:
    """A mutant's patch: the own classes with some replaced by wrong ones."""
    return {"own_classes": {**OWN_CLASSES, **wrong}}


# -- wrong optimizers (the mutants) --------------------------------------------------------------
class PlantedAdam(own_optim.Adam):
    """A per-tensor Adam (L2 decay, no AMSGrad) whose denominator the wrong subclasses get wrong."""

    def denom(self, v, t, beta2, eps):
        return (v.sqrt() / (1 - beta2**t) ** 0.5).add_(eps)  # right: eps after the bias correction

    def step_size(self, lr, t, beta1):
        return lr / (1 - beta1**t)

    def _update(self, group, params):
        beta1, beta2 = group["betas"]
        for p in params:
            st = self.state[p]
            if not st:
                st.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            st["step"] = t = st["step"] + 1
            g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
            st["exp_avg"].lerp_(g, 1 - beta1)
            st["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = self.denom(st["exp_avg_sq"], t, beta2, group["eps"])
            p.addcdiv_(st["exp_avg"], denom, value=-self.step_size(group["lr"], t, beta1))


class NoBiasCorrection(PlantedAdam):
    """WRONG: Adam without bias correction of either moment."""

    def step_size(self, lr, t, beta1):
        return lr

    def denom(self, v, t, beta2, eps):
        return v.sqrt().add_(eps)


class EpsInsideSqrt(PlantedAdam):
    """WRONG: eps added under the square root."""

    def denom(self, v, t, beta2, eps):
        return (v / (1 - beta2**t) + eps).sqrt()


class NesterovWithOldBuffer(own_optim.SGD):
    """WRONG: Nesterov look-ahead along the buffer *before* its update."""

    def _update(self, group, params):
        mom, lr = group["momentum"], group["lr"]
        for p in params:
            g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
            if mom == 0:
                p.add_(g, alpha=-lr)
                continue
            old = self.state[p].get("momentum_buffer")
            buf = g.clone() if old is None else old.clone().mul_(mom).add_(g, alpha=1 - group["dampening"])
            self.state[p]["momentum_buffer"] = buf
            look = old if (group["nesterov"] and old is not None) else buf
            p.add_(g.add(look, alpha=mom) if group["nesterov"] else buf, alpha=-lr)


@task("m2.optimizers", seed="m2", title="SGD, Momentum, Adam, RMSProp from scratch")
class Optimizers(Comparison):
    __doc__ = __doc__
    variants = ("torch_foreach", "torch_fused", "torch_loop", "own_loop", "own_foreach")
    check_dtypes = (torch.float64, torch.float32)
    # float64: the same operations in the same order agree to rounding, so 1e-10 is far
    # above any honest difference and far below a formula difference
    tolerances = {torch.float64: Tolerance(rtol=1e-10, atol=1e-12)}
    sizes = {
        "tiny": [StepConfig("adam", n_layers=4, width=32), StepConfig("momentum", n_layers=4, width=32)],
        "cpu": [StepConfig(s) for s in ("momentum", "adam", "adamw", "rmsprop")],
        "gpu": [StepConfig(s, n_layers=104, width=1024) for s in ("momentum", "adam", "adamw", "rmsprop")],
    }
    claims = (
        time_ratio("own_foreach", to="torch_foreach", at_most=1.1, config="adam,", text=_FOREACH),
        speedup("torch_fused", over="torch_foreach", at_least=2.0, config="adam,", text=_FUSED_CLAIM),
        time_ratio("own_loop", to="torch_loop", at_most=1.1, config="adam,", text=_LOOP),
    )
    #: optimizer name -> own class; the mutants swap in wrong ones
    own_classes: dict[str, type] = OWN_CLASSES
    mutants = (
        Mutant("adam_no_bias_correction", "Adam without bias correction", _own(Adam=NoBiasCorrection), match=_TRAJ),
        Mutant("adam_eps_inside_sqrt", "Adam adds eps under the sqrt", _own(Adam=EpsInsideSqrt), match=_TRAJ),
        Mutant("nesterov_stale_buffer", "looks ahead on the old buffer", _own(SGD=NesterovWithOldBuffer), match=_TRAJ),
    )
    steps = 50

    def make(self, variant: str, setting: str, params) -> torch.optim.Optimizer:
        """The optimizer of ``variant`` for ``setting`` over ``params``."""
        name, kwargs = SETTINGS[setting]
        if variant.startswith("own"):
            return self.own_classes[name](params, **kwargs, foreach=variant == "own_foreach")
        extra = {"torch_foreach": {"foreach": True}, "torch_loop": {"foreach": False}, "torch_fused": {"fused": True}}
        extra = extra[variant]
        if variant == "torch_fused" and name not in _FUSED:
            raise NotImplementedError(f"torch {name} has no fused implementation in this torch version")
        return getattr(torch.optim, name)(params, **kwargs, **extra)

    # -- check ---------------------------------------------------------------------------------
    def trajectory(self, variant: str, setting: str, device, dtype, seed: int) -> torch.Tensor:
        """(steps, P) parameters after each step, from the same init and batches for every variant."""
        torch.manual_seed(seed)
        model = MLP(MLPConfig(in_features=64, hidden=(32,), out_features=10)).to(device, dtype)
        x, y = _data(dtype, device)
        return optimizer_trajectory(
            model, self.make(variant, setting, model.parameters()), x, y, steps=self.steps, batch=32, seed=seed
        )

    def check(self, ctx) -> None:
        dt = str(ctx.dtype).replace("torch.", "")
        rows = []
        for setting in SETTINGS:
            for own, ref in (("own_loop", "torch_loop"), ("own_foreach", "torch_foreach")):
                want = self.trajectory(ref, setting, ctx.device, ctx.dtype, ctx.rng_seed)
                got = self.trajectory(own, setting, ctx.device, ctx.dtype, ctx.rng_seed)
                err = (got - want).abs().max().item()
                rel = ((got - want).abs() / want.abs().clamp_min(1e-12)).max().item()
                row = dict(setting=setting, version=own, reference=ref, dtype=dt, steps=self.steps)
                rows.append({**row, "max_abs_err": float(f"{err:.3g}"), "max_rel_err": float(f"{rel:.3g}")})
                where = f"{setting}, {self.steps} steps"
                ctx.assert_close(got, want, name=f"{own} trajectory = torch.optim", where=where)
            moved = not torch.equal(want[0], want[-1])
            ctx.expect(moved, f"{setting}: parameters did not move", name="the trajectories move")
        ctx.table(f"trajectory errors ({dt})", rows)
        self.check_bad_input(ctx)

    def check_bad_input(self, ctx) -> None:
        for what, name, kwargs in bad_input_cases(ctx.dtype, ctx.device):
            kind = torch_error(name, kwargs)
            own = lambda: self.own_classes[name](**kwargs)  # noqa: E731, B023 (called at once, inside the loop)
            ctx.expect_raises(kind, own, name=f"{what} raises {kind.__name__} like torch")

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: StepConfig) -> Prepared:
        params = bench_parameters(config.n_layers, config.width, device=ctx.device, dtype=ctx.dtype, seed=ctx.rng_seed)
        opt = self.make(impl, config.setting, params)
        opt.step()  # state (moments, buffers) exists from here on, as in steady-state training
        n = sum(p.numel() for p in params)
        return Prepared(
            fn=opt.step, items=n, item_unit="params", bytes=n * _TRAFFIC[config.setting] * params[0].element_size()
        )

    def bench(self, ctx) -> None:
        for config in ctx.configs:
            for v in self.variants:
                try:
                    prepared = self.prepare(ctx, v, config)
                except NotImplementedError as e:
                    ctx.skip_part(f"{v} [{config.label()}]", str(e))
                    continue
                ctx.measure(v, prepared, config=config)
