"""3.09 Learning-rate schedules by hand.

Compared: ``kernels.optim.schedulers`` (closed forms set on the optimizer's param groups each
step) against ``torch.optim.lr_scheduler`` (the baseline), for three schedules:

* ``step``: StepLR, lr = base * gamma ** floor(t / step_size);
* ``cosine``: CosineAnnealingLR, lr = eta_min + (base - eta_min)(1 + cos(pi t / T_max)) / 2
  (Loshchilov & Hutter 2017), run past T_max, where both follow the cosine back up;
* ``warmup_cosine``: linear warmup from start_factor * base over W steps, then cosine to
  eta_min at ``total`` (Goyal et al. 2017), against
  ``SequentialLR([LinearLR(start_factor, total_iters=W), CosineAnnealingLR(total - W)], [W])``.

Check (tiny): an SGD optimizer with two param groups (base lr 0.1 and 0.03) is driven by
each pair of schedulers for 1,000 steps (1,001 values for warmup_cosine, on [0, total]);
every lr of every group at every step, and ``get_last_lr()``, must agree to rtol 1e-12
(torch's CosineAnnealingLR rescales the current lr recursively, as the hand one now does;
left alone that differs from the closed form by rounding only, at most 3.5e-15 relative
over the 1,000 steps, but after an lr set by hand the closed form ignores the change:
tests/kernels/test_edge_cases.py shows both). Independent of torch, a
few values are checked against the formulas written out: StepLR halves exactly at
t = step_size; the cosine is eta_min at T_max, (base + eta_min) / 2 at T_max / 2 and base
again at 2 T_max; warmup starts at start_factor * base and reaches base at W. The lr
curves of both implementations go into the report.

Bench: time of one ``scheduler.step()`` per schedule, torch vs hand, next to one SGD step
of a small MLP (64-128-10, batch 64) for scale.

Lesson: a schedule's ``step()`` is a few microseconds of Python, a small share of even a
tiny training step (the claims measure both), so its price is irrelevant and its
correctness is everything. The values agree to rounding; the bugs that matter are
off-by-one ones (stepping before ``optimizer.step()``, decaying at t = step_size - 1, a
period of T_max - 1), which move every value after the first boundary and which the
value-by-value check catches (the mutants below).
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler as tls

import kernels.optim.schedulers as S
from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant
from harness.train import standard_step
from models.mlp import MLP, MLPConfig

SCHEDULES = ("step", "cosine", "warmup_cosine")


@dataclasses.dataclass(frozen=True)
class LRConfig:
    """Schedule parameters (steps are optimizer steps) shared by torch and the hand version."""

    steps: int = 1000
    """scheduler steps compared (warmup_cosine: total + 1 values, t = 0..total)"""
    base_lrs: tuple[float, ...] = (0.1, 0.03)
    """initial lr of each param group"""
    step_size: int = 30
    """StepLR: steps between decays"""
    gamma: float = 0.5
    """StepLR: decay factor"""
    t_max: int = 300
    """CosineAnnealingLR: half period in steps (the run goes past it)"""
    eta_min: float = 1e-4
    """cosine floor (both cosine schedules)"""
    warmup: int = 50
    """warmup_cosine: linear warmup steps W"""
    start_factor: float = 0.1
    """warmup_cosine: lr at t = 0 as a fraction of base"""

    def label(self) -> str:
        return f"steps={self.steps},groups={len(self.base_lrs)}"


def _optimizer(cfg: LRConfig) -> torch.optim.SGD:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in cfg.base_lrs]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, cfg.base_lrs)])


# -- wrong versions (mutants): hand_scheduler(self, kind, opt, cfg) -------------------------


def _step_off_by_one(self, kind, opt, cfg):  # decays at t = step_size - 1
    if kind == "step":
        return S.LRSchedule(opt, lambda t, base: S.step_lr(t + 1, base, cfg.step_size, cfg.gamma))
    return LRSchedule.hand_scheduler(self, kind, opt, cfg)


def _cosine_short_period(self, kind, opt, cfg):  # T_max - 1: eta_min one step early
    if kind == "cosine":
        return S.CosineAnnealingLR(opt, cfg.t_max - 1, cfg.eta_min)
    return LRSchedule.hand_scheduler(self, kind, opt, cfg)


def _warmup_from_zero(self, kind, opt, cfg):  # LinearLR starts at start_factor * base, never 0
    if kind != "warmup_cosine":
        return LRSchedule.hand_scheduler(self, kind, opt, cfg)
    args = (cfg.warmup, cfg.steps, cfg.start_factor, cfg.eta_min)
    return S.LRSchedule(opt, lambda t, b: b * t / cfg.warmup if t < cfg.warmup else S.warmup_cosine_lr(t, b, *args))


def _only_first_group(self, kind, opt, cfg):  # group 1 keeps its base lr
    sched = LRSchedule.hand_scheduler(self, kind, opt, cfg)

    def apply():
        opt.param_groups[0]["lr"] = sched.lr_at(sched.last_epoch, sched.base_lrs[0])
        sched._last_lr = [g["lr"] for g in opt.param_groups]

    sched._apply = apply
    return sched


@task("nn_basics.lr_schedule", seed="3.09", title="learning-rate schedules by hand")
class LRSchedule(Comparison):
    __doc__ = __doc__
    variants = ("torch", "hand")
    sizes = {"tiny": LRConfig(), "cpu": LRConfig(), "gpu": LRConfig()}
    metrics = {"step_share_of_sgd": "median torch warmup_cosine step() / one SGD step of a 64-128-10 MLP"}
    claims = (
        metric("step_share_of_sgd", "<=", 0.05, text="a schedule step() costs <= 5 % of a tiny MLP's SGD step"),
        time_ratio("hand", to="torch", at_most=1.5, text="the hand closed-form step() within 1.5x of torch's"),
    )
    mutants = tuple(
        Mutant(name, what, {"hand_scheduler": fn}, match=match)
        for name, what, fn, match in (
            ("step_off_by_one", "StepLR decays at t = step_size - 1", _step_off_by_one, "step: lr per step"),
            ("cosine_short_period", "cosine with T_max - 1", _cosine_short_period, "cosine: lr per step"),
            ("warmup_from_zero", "warmup starts at 0", _warmup_from_zero, "warmup_cosine: lr per step"),
            ("only_first_group", "param group 1 never scheduled", _only_first_group, "lr per step"),
        )
    )

    def torch_scheduler(self, kind: str, opt, cfg: LRConfig):
        if kind == "step":
            return tls.StepLR(opt, cfg.step_size, cfg.gamma)
        if kind == "cosine":
            return tls.CosineAnnealingLR(opt, cfg.t_max, cfg.eta_min)
        return tls.SequentialLR(
            opt,
            [
                tls.LinearLR(opt, start_factor=cfg.start_factor, total_iters=cfg.warmup),
                tls.CosineAnnealingLR(opt, T_max=cfg.steps - cfg.warmup, eta_min=cfg.eta_min),
            ],
            milestones=[cfg.warmup],
        )

    def hand_scheduler(self, kind: str, opt, cfg: LRConfig):
        """The implementation under test (tests replace it with planted bugs)."""
        if kind == "step":
            return S.StepLR(opt, cfg.step_size, cfg.gamma)
        if kind == "cosine":
            return S.CosineAnnealingLR(opt, cfg.t_max, cfg.eta_min)
        return S.WarmupCosineLR(opt, cfg.warmup, cfg.steps, cfg.start_factor, cfg.eta_min)

    def trace(self, variant: str, kind: str, cfg: LRConfig) -> tuple[list[list[float]], list[list[float]]]:
        """(lr of each group, get_last_lr()) at t = 0 .. n-1: the value used by step t."""
        opt = _optimizer(cfg)
        sched = (self.torch_scheduler if variant == "torch" else self.hand_scheduler)(kind, opt, cfg)
        n = cfg.steps + 1 if kind == "warmup_cosine" else cfg.steps
        lrs, last = [], []
        for _ in range(n):
            lrs.append([g["lr"] for g in opt.param_groups])
            last.append(list(sched.get_last_lr()))
            opt.step()  # no gradients: a no-op that keeps torch's step-order warning quiet
            with warnings.catch_warnings():  # SequentialLR's internal step(0) warns
                warnings.simplefilter("ignore")
                sched.step()
        return lrs, last

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        for kind in SCHEDULES:
            (ref, _), (own, own_last) = self.trace("torch", kind, cfg), self.trace("hand", kind, cfg)
            ctx.expect(len(own) == len(ref), f"{kind}: {len(own)} values vs torch's {len(ref)}", name="length")
            # float64 tensors (T, groups): one comparison names the worst step
            ctx.assert_close(
                torch.tensor(own, dtype=torch.float64),
                torch.tensor(ref, dtype=torch.float64),
                name=f"{kind}: lr per step and group = torch",
                rtol=1e-12,
                atol=1e-15,
            )
            ctx.assert_close(
                torch.tensor(own_last, dtype=torch.float64),
                torch.tensor(own, dtype=torch.float64),
                name=f"{kind}: get_last_lr() = group lr",
                rtol=0,
                atol=0,
            )
            for variant, vals in (("torch", ref), ("hand", own)):
                ctx.curve(
                    f"lr: {kind}", list(range(len(vals))), [v[0] for v in vals], y_label="lr (group 0)", series=variant
                )
            own_t = {t: v[0] for t, v in enumerate(own)}
            base, s, tm, w = cfg.base_lrs[0], cfg.step_size, cfg.t_max, cfg.warmup
            expected = {
                "step": {0: base, s - 1: base, s: base * cfg.gamma, 2 * s: base * cfg.gamma**2},
                # cos(pi/2) = 0 at the half period: the midpoint of base and eta_min (T_max even)
                "cosine": {
                    0: base,
                    tm: cfg.eta_min,
                    2 * tm: base,
                    **({tm // 2: (base + cfg.eta_min) / 2} if tm % 2 == 0 else {}),
                },
                "warmup_cosine": {0: cfg.start_factor * base, w: base, cfg.steps: cfg.eta_min},
            }[kind]
            for t, v in expected.items():
                ctx.assert_close(
                    torch.tensor(own_t[t], dtype=torch.float64),
                    torch.tensor(v, dtype=torch.float64),
                    name=f"{kind}: value from the written-out formula",
                    where=f"t={t}",
                    rtol=1e-12,
                    atol=1e-15,
                )

    # -- bench ---------------------------------------------------------------------------
    def stepper(self, variant: str, kind: str):
        """``scheduler.step`` of a fresh (variant, kind) pair, advanced past the warmup."""
        cfg = LRConfig()
        opt = _optimizer(cfg)
        sched = (self.torch_scheduler if variant == "torch" else self.hand_scheduler)(kind, opt, cfg)
        opt.step()
        with warnings.catch_warnings():  # step past SequentialLR's milestone (its step(0) warns)
            warnings.simplefilter("ignore")
            for _ in range(cfg.warmup + 1):
                sched.step()
        return sched.step

    def prepare(self, ctx, impl: str, config) -> Prepared:
        """One ``step()`` of each of the three schedules of ``impl`` (pytest/asv front ends)."""
        steps = [self.stepper(impl, kind) for kind in SCHEDULES]
        return Prepared(fn=lambda: [s() for s in steps])

    def bench(self, ctx) -> None:
        for kind in SCHEDULES:  # warmup_cosine last: the claims read the last shared config
            ms = {v: ctx.measure(v, self.stepper(v, kind), config=kind) for v in self.variants}
        torch.manual_seed(ctx.rng_seed)
        model = MLP(MLPConfig(in_features=64, hidden=(128,), out_features=10)).to(ctx.device, ctx.dtype)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.rand(64, 64, generator=ctx.generator()).to(ctx.device, ctx.dtype)
        y = torch.randint(0, 10, (64,), generator=ctx.generator(1)).to(ctx.device)
        sgd = lambda: standard_step(model, opt, x, y, F.cross_entropy)  # noqa: E731 (named for reading)
        one = ctx.measure("sgd_step (for scale)", sgd, config="mlp=64-128-10,bs=64")
        ctx.metric("step_share_of_sgd", ms["torch"].median_ms / one.median_ms)
