"""3.09 lr_schedule: hand schedules equal torch's value by value; planted bugs are caught."""

import kernels.optim.schedulers as S
from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("nn_basics.lr_schedule")


def test_check_passes_and_records_both_curves():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {(c["name"], c["series"]) for c in rec.curves} == {
        (f"lr: {k}", v) for k in ("step", "cosine", "warmup_cosine") for v in ("torch", "hand")
    }


class StepOffByOne(Task):
    """StepLR one step ahead: decays at t = step_size - 1."""

    def hand_scheduler(self, kind, opt, cfg):
        if kind == "step":
            return S.LRSchedule(opt, lambda t, base: S.step_lr(t + 1, base, cfg.step_size, cfg.gamma))
        return super().hand_scheduler(kind, opt, cfg)


class CosineShortPeriod(Task):
    """Cosine with T_max - 1: reaches eta_min one step early."""

    def hand_scheduler(self, kind, opt, cfg):
        if kind == "cosine":
            return S.CosineAnnealingLR(opt, cfg.t_max - 1, cfg.eta_min)
        return super().hand_scheduler(kind, opt, cfg)


class WarmupFromZero(Task):
    """Warmup from 0 instead of start_factor * base (LinearLR never starts at 0)."""

    def hand_scheduler(self, kind, opt, cfg):
        if kind == "warmup_cosine":
            return S.LRSchedule(
                opt,
                lambda t, base: (
                    base * min(t, cfg.warmup) / cfg.warmup
                    if t < cfg.warmup
                    else S.warmup_cosine_lr(t, base, cfg.warmup, cfg.steps, cfg.start_factor, cfg.eta_min)
                ),
            )
        return super().hand_scheduler(kind, opt, cfg)


class OnlyFirstGroup(Task):
    """Schedules param group 0 only; group 1 keeps its base lr."""

    def hand_scheduler(self, kind, opt, cfg):
        sched = super().hand_scheduler(kind, opt, cfg)
        lr_at = sched.lr_at

        def apply():
            opt.param_groups[0]["lr"] = lr_at(sched.last_epoch, sched.base_lrs[0])
            sched._last_lr = [g["lr"] for g in opt.param_groups]

        sched._apply = apply
        return sched


def test_step_schedule_off_by_one_is_caught():
    expect_check_fails(StepOffByOne, match="step: lr per step")


def test_cosine_period_off_by_one_is_caught():
    expect_check_fails(CosineShortPeriod, match="cosine: lr per step")


def test_warmup_from_zero_is_caught():
    expect_check_fails(WarmupFromZero, match="warmup_cosine: lr per step")


def test_unscheduled_param_group_is_caught():
    expect_check_fails(OnlyFirstGroup, match="lr per step")


def test_prepare_times_every_variant():
    from harness.context import Context

    ctx = Context(Task, mode="bench")
    for v in Task.variants:
        Task().prepare(ctx, v, ctx.configs[0]).fn()
