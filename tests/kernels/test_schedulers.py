"""kernels/optim/schedulers.py: hand LR schedules equal torch.optim.lr_scheduler value by value."""

import math
import warnings

import pytest
import torch
from torch.optim import lr_scheduler as tls

import kernels.optim.schedulers as S

REL = 1e-12  # torch's recursive formulas differ from the closed forms by ~1e-17 absolute


def _opt(lrs=(0.1, 0.03)):
    ps = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)])


def _values(opt, sched, steps):
    vals = []
    for _ in range(steps):
        vals.append([g["lr"] for g in opt.param_groups])
        opt.step()
        with warnings.catch_warnings():  # SequentialLR's internal step(0) warns
            warnings.simplefilter("ignore")
            sched.step()
    return vals


def _assert_same(a, b):
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b)):
        assert x == pytest.approx(y, rel=REL, abs=1e-15), f"step {t}: {x} vs {y}"


@pytest.mark.parametrize("step_size,gamma", [(1, 0.5), (3, 0.1), (7, 0.9)])
def test_step_lr_equals_torch(step_size, gamma):
    o1, o2 = _opt(), _opt()
    _assert_same(_values(o1, S.StepLR(o1, step_size, gamma), 40), _values(o2, tls.StepLR(o2, step_size, gamma), 40))


@pytest.mark.parametrize("T_max,eta_min", [(10, 0.0), (25, 1e-3), (1, 0.01)])
def test_cosine_annealing_equals_torch_including_past_t_max(T_max, eta_min):
    o1, o2 = _opt(), _opt()
    steps = 2 * T_max + 5  # past T_max both follow the cosine back up
    _assert_same(
        _values(o1, S.CosineAnnealingLR(o1, T_max, eta_min), steps),
        _values(o2, tls.CosineAnnealingLR(o2, T_max, eta_min), steps),
    )


@pytest.mark.parametrize("warmup,total,f0,eta_min", [(5, 20, 0.1, 1e-3), (1, 10, 0.5, 0.0), (10, 11, 0.01, 0.0)])
def test_warmup_cosine_equals_sequential_lr(warmup, total, f0, eta_min):
    o1, o2 = _opt(), _opt()
    ref = tls.SequentialLR(
        o2,
        [
            tls.LinearLR(o2, start_factor=f0, total_iters=warmup),
            tls.CosineAnnealingLR(o2, T_max=total - warmup, eta_min=eta_min),
        ],
        milestones=[warmup],
    )
    _assert_same(_values(o1, S.WarmupCosineLR(o1, warmup, total, f0, eta_min), total + 1), _values(o2, ref, total + 1))


def test_warmup_cosine_equals_lambda_lr_and_holds_eta_min_after_end():
    warmup, total, f0 = 4, 16, 0.25
    o1, o2 = _opt((0.2,)), _opt((0.2,))
    ref = tls.LambdaLR(o2, lambda t: S.warmup_cosine_lr(t, 1.0, warmup, total, f0, 0.0))
    _assert_same(_values(o1, S.WarmupCosineLR(o1, warmup, total, f0), total + 10), _values(o2, ref, total + 10))
    assert S.warmup_cosine_lr(total + 5, 0.2, warmup, total, f0, 0.01) == 0.01


def test_closed_forms_at_known_points():
    assert S.step_lr(0, 1.0, 3, 0.1) == 1.0
    assert S.step_lr(6, 1.0, 3, 0.1) == pytest.approx(0.01)
    assert S.cosine_annealing_lr(5, 1.0, 10, 0.0) == pytest.approx(0.5)
    assert S.cosine_annealing_lr(10, 1.0, 10, 0.2) == pytest.approx(0.2)
    assert S.linear_warmup_lr(0, 1.0, 4, 0.2) == pytest.approx(0.2)
    assert S.linear_warmup_lr(4, 1.0, 4, 0.2) == 1.0
    assert S.warmup_cosine_lr(4, 1.0, 4, 12, 0.2) == 1.0  # peak right after warmup


def test_state_dict_resume_and_get_last_lr():
    o1 = _opt()
    s1 = S.CosineAnnealingLR(o1, 10, 0.0)
    for _ in range(4):
        s1.step()
    o2 = _opt()
    s2 = S.CosineAnnealingLR(o2, 10, 0.0)
    s2.load_state_dict(s1.state_dict())
    assert s2.get_last_lr() == s1.get_last_lr() == [g["lr"] for g in o1.param_groups]
    s1.step()
    s2.step()
    assert s1.get_last_lr() == s2.get_last_lr()


def test_drives_own_optimizer():
    from kernels.optim.optimizers import AdamW

    p = torch.nn.Parameter(torch.zeros(2))
    opt = AdamW([p], lr=0.5)
    sched = S.StepLR(opt, 2, 0.5)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        sched.step()
    assert seen == [0.5, 0.5, 0.25, 0.25, 0.125]


# ---------------------------------------------------------------- planted bugs


def test_planted_schedule_bugs_are_caught():
    o = _opt((0.1,))
    ref = _values(o, tls.CosineAnnealingLR(o, 10, 0.0), 15)
    # bug 1: cos(2 pi t / T) - a full period instead of half
    wrong = [[0.05 * (1 + math.cos(2 * math.pi * t / 10))] for t in range(15)]
    with pytest.raises(AssertionError):
        _assert_same(wrong, ref)
    # bug 2: warmup off by one (starts at the second warmup value)
    o1, o2 = _opt((0.1,)), _opt((0.1,))
    ref2 = _values(o2, tls.LinearLR(o2, start_factor=0.1, total_iters=5), 8)
    off = S.LRSchedule(o1, lambda t, base: S.linear_warmup_lr(t + 1, base, 5, 0.1))
    with pytest.raises(AssertionError):
        _assert_same(_values(o1, off, 8), ref2)


# ---------------------------------------------------------------- bad input


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(_opt(), 0)
    with pytest.raises(ValueError, match="T_max"):
        S.CosineAnnealingLR(_opt(), 0)
    with pytest.raises(ValueError, match="total_steps"):
        S.WarmupCosineLR(_opt(), 10, 10)
    with pytest.raises(ValueError, match="start_factor"):
        S.WarmupCosineLR(_opt(), 2, 10, start_factor=0.0)
    with pytest.raises(TypeError, match="Optimizer"):
        S.StepLR(object(), 2)
