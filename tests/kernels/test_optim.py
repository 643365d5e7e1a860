"""kernels/optim/optimizers.py: trajectories of the hand-written optimizers equal torch.optim.

Every comparison runs 50 steps of a small MLP on a fixed data stream, with two param
groups (different hyper-parameters) and a layer whose gradient is None on every 5th step
(so per-parameter step counts differ, which the foreach Adam must handle).
float64: rtol = atol = 1e-12; float32: torch.testing's float32 defaults.
"""

import math

import pytest
import torch

import kernels.optim.optimizers as O

STEPS = 50
TIGHT = dict(rtol=1e-12, atol=1e-12)


def _model(dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(dtype)


def _groups(model, extra):
    first, second = list(model[0].parameters()), list(model[2].parameters())
    return [{"params": first}, {"params": second, **extra}]


def trajectory(make_opt, dtype, steps=STEPS, group_extra=None):
    """Parameters (flattened) after each step."""
    model = _model(dtype)
    opt = make_opt(_groups(model, group_extra or {}))
    gen = torch.Generator().manual_seed(1)
    out = []
    for s in range(steps):
        x = torch.randn(16, 5, generator=gen).to(dtype)
        y = torch.randn(16, 3, generator=gen).to(dtype)
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        if s % 5 == 4:
            for p in model[0].parameters():
                p.grad = None  # this layer sits the step out
        opt.step()
        out.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))
    return torch.stack(out)  # (steps, n_params)


def assert_trajectories_close(a, b, dtype):
    if dtype == torch.float64:
        torch.testing.assert_close(a, b, **TIGHT)
    else:
        torch.testing.assert_close(a, b)


CASES = {
    "sgd": ("SGD", "SGD", dict(lr=0.1), {}),
    "sgd_momentum_dampening_l2": (
        "SGD",
        "SGD",
        dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01),
        {"lr": 0.1},
    ),
    "sgd_nesterov": ("SGD", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), {"momentum": 0.5}),
    "sgd_maximize": ("SGD", "SGD", dict(lr=0.01, momentum=0.3, maximize=True), {}),
    "adam": ("Adam", "Adam", dict(lr=0.01), {"betas": (0.8, 0.99)}),
    "adam_l2": ("Adam", "Adam", dict(lr=0.01, weight_decay=0.1, eps=1e-6), {}),
    "adam_amsgrad": ("Adam", "Adam", dict(lr=0.01, amsgrad=True), {"lr": 0.003}),
    "adam_decoupled_equals_adamw": ("Adam", "AdamW", dict(lr=0.01, weight_decay=0.1), {}),
    "adamw": ("AdamW", "AdamW", dict(lr=0.01, weight_decay=0.05), {"weight_decay": 0.2}),
    "adamw_maximize": ("AdamW", "AdamW", dict(lr=0.005, maximize=True), {}),
    "rmsprop": ("RMSprop", "RMSprop", dict(lr=0.01), {}),
    "rmsprop_centered_momentum_l2": (
        "RMSprop",
        "RMSprop",
        dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1),
        {"eps": 1e-4},
    ),
    "rmsprop_momentum": ("RMSprop", "RMSprop", dict(lr=0.005, momentum=0.9), {"alpha": 0.95}),
}


def _mine(name, kw, foreach):
    if name == "adam_decoupled_equals_adamw":
        return lambda g: O.Adam(g, foreach=foreach, decoupled_weight_decay=True, **kw)
    return lambda g: getattr(O, CASES[name][0])(g, foreach=foreach, **kw)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_trajectory_equals_torch(name, foreach, dtype):
    _, ref_cls, kw, extra = CASES[name]
    mine = trajectory(_mine(name, kw, foreach), dtype, group_extra=extra)
    ref = trajectory(lambda g: getattr(torch.optim, ref_cls)(g, foreach=foreach, **kw), dtype, group_extra=extra)
    assert not torch.equal(mine[0], mine[-1])  # the parameters did move
    assert_trajectories_close(mine, ref, dtype)


@pytest.mark.parametrize("cls", ["SGD", "Adam", "RMSprop"])
def test_foreach_equals_loop(cls):
    kw = {
        "SGD": dict(lr=0.05, momentum=0.9, nesterov=True),
        "Adam": dict(lr=0.01, amsgrad=True),
        "RMSprop": dict(lr=0.01, centered=True, momentum=0.2),
    }[cls]
    a = trajectory(lambda g: getattr(O, cls)(g, foreach=False, **kw), torch.float64)
    b = trajectory(lambda g: getattr(O, cls)(g, foreach=True, **kw), torch.float64)
    torch.testing.assert_close(a, b, **TIGHT)


def test_mixed_dtypes_foreach_groups_by_dtype():
    # a float32 and a float64 parameter in one group: foreach needs one list per dtype
    def run(cls):
        torch.manual_seed(3)
        p32 = torch.nn.Parameter(torch.randn(4))
        p64 = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
        opt = cls([p32, p64], lr=0.01)
        for _ in range(10):
            opt.zero_grad()
            ((p32**2).sum() + (p64.sin()).sum()).backward()
            opt.step()
        return p32.detach(), p64.detach()

    for (a32, a64), (b32, b64) in [
        (run(lambda p, lr: O.Adam(p, lr=lr, foreach=True)), run(lambda p, lr: torch.optim.Adam(p, lr=lr, foreach=True)))
    ]:
        torch.testing.assert_close(a32, b32)
        torch.testing.assert_close(a64, b64, **TIGHT)


def test_state_dict_resume_equals_uninterrupted():
    full = trajectory(lambda g: O.Adam(g, lr=0.01, foreach=True), torch.float64, steps=30)
    model = _model(torch.float64)
    opt = O.Adam(_groups(model, {}), lr=0.01, foreach=True)
    gen = torch.Generator().manual_seed(1)
    for s in range(30):
        x = torch.randn(16, 5, generator=gen).double()
        y = torch.randn(16, 3, generator=gen).double()
        if s == 15:  # rebuild the optimizer from its state_dict mid-run
            sd = opt.state_dict()
            opt = O.Adam(_groups(model, {}), lr=0.01, foreach=True)
            opt.load_state_dict(sd)
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        if s % 5 == 4:
            for p in model[0].parameters():
                p.grad = None
        opt.step()
    final = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(final, full[-1], **TIGHT)


def test_closure_and_torch_lr_scheduler_drive_own_optimizer():
    def run(cls):
        torch.manual_seed(0)
        w = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
        opt = cls([w], lr=0.1, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        losses = []
        for _ in range(10):

            def closure():
                opt.zero_grad()
                loss = (w**2).sum() + w.sum()
                loss.backward()
                return loss

            losses.append(opt.step(closure).item())
            sched.step()
        return w.detach(), losses

    (a, la), (b, lb) = run(O.SGD), run(torch.optim.SGD)
    torch.testing.assert_close(a, b, **TIGHT)
    assert la == pytest.approx(lb, rel=1e-12)


# ---------------------------------------------------------------- planted bugs


class _PlantedAdam(torch.optim.Optimizer):
    """Adam with one deliberate mistake selected by ``bug``."""

    def __init__(self, params, bug, lr=0.01, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))
        self.bug = bug

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                st["t"] += 1
                t, m, v, g = st["t"], st["m"], st["v"], p.grad
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                if self.bug == "no_bias_correction":
                    m_hat, v_hat = m, v
                else:
                    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
                if self.bug == "eps_inside_sqrt":
                    denom = (v_hat + group["eps"]).sqrt()
                else:
                    denom = v_hat.sqrt() + group["eps"]
                p.sub_(group["lr"] * m_hat / denom)


class _PlantedSGD(torch.optim.Optimizer):
    """Nesterov off by one: looks ahead along the *previous* buffer."""

    def __init__(self, params, lr, momentum):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                g = p.grad
                old = st.get("buf", torch.zeros_like(p))
                st["buf"] = g.clone() if "buf" not in st else old * group["momentum"] + g
                p.sub_(group["lr"] * (g + group["momentum"] * old))  # BUG: old buffer


def test_planted_adam_correct_variant_passes():
    # the planted optimizer without a bug is right, so the failures below are the bugs'
    mine = trajectory(lambda g: _PlantedAdam(g, bug=None, eps=1e-3), torch.float64)
    ref = trajectory(lambda g: torch.optim.Adam(g, lr=0.01, eps=1e-3), torch.float64)
    torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bug", ["no_bias_correction", "eps_inside_sqrt"])
def test_planted_adam_bugs_are_caught(bug):
    # eps = 1e-3 makes the eps placement visible (at 1e-8 it hides below the tolerance of
    # a float32 run, but not of the 1e-12 float64 comparison used here)
    mine = trajectory(lambda g: _PlantedAdam(g, bug=bug, eps=1e-3), torch.float64)
    ref = trajectory(lambda g: torch.optim.Adam(g, lr=0.01, eps=1e-3), torch.float64)
    with pytest.raises(AssertionError):
        assert_trajectories_close(mine, ref, torch.float64)


def test_planted_eps_inside_sqrt_caught_even_at_default_eps():
    mine = trajectory(lambda g: _PlantedAdam(g, bug="eps_inside_sqrt"), torch.float64)
    ref = trajectory(lambda g: torch.optim.Adam(g, lr=0.01), torch.float64)
    with pytest.raises(AssertionError):
        assert_trajectories_close(mine, ref, torch.float64)


def test_planted_nesterov_off_by_one_is_caught():
    mine = trajectory(lambda g: _PlantedSGD(g, lr=0.05, momentum=0.9), torch.float64)
    ref = trajectory(lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9, nesterov=True), torch.float64)
    with pytest.raises(AssertionError):
        assert_trajectories_close(mine, ref, torch.float64)


def test_planted_coupled_decay_is_not_adamw():
    mine = trajectory(lambda g: O.Adam(g, lr=0.01, weight_decay=0.1), torch.float64)  # L2, coupled
    ref = trajectory(lambda g: torch.optim.AdamW(g, lr=0.01, weight_decay=0.1), torch.float64)
    with pytest.raises(AssertionError):
        assert_trajectories_close(mine, ref, torch.float64)


# ---------------------------------------------------------------- bad input


def _p():
    return [torch.nn.Parameter(torch.zeros(2))]


@pytest.mark.parametrize(
    "make",
    [
        lambda: O.SGD(_p(), lr=-0.1),
        lambda: O.Adam(_p(), lr=-1e-3),
        lambda: O.AdamW(_p(), lr=-1e-3),
        lambda: O.RMSprop(_p(), lr=-0.01),
        lambda: O.SGD(_p(), lr=float("nan")),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop", "nan"],
)
def test_negative_lr_raises_value_error_like_torch(make):
    with pytest.raises(ValueError, match="learning rate"):
        make()
    with pytest.raises(ValueError):
        torch.optim.SGD(_p(), lr=-0.1)  # the same exception type as torch


@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.999), (0.9, -1e-3)])
def test_betas_outside_unit_interval_raise(betas):
    for cls in (O.Adam, O.AdamW):
        with pytest.raises(ValueError, match="beta"):
            cls(_p(), betas=betas)
    with pytest.raises(ValueError):
        torch.optim.Adam(_p(), betas=betas)


def test_non_leaf_and_empty_params_raise_like_torch():
    leaf = torch.zeros(3, requires_grad=True)
    non_leaf = leaf * 2
    for cls in (O.SGD, O.Adam, O.AdamW, O.RMSprop, torch.optim.SGD):
        with pytest.raises(ValueError, match="non-leaf"):
            cls([non_leaf], lr=0.1)
        with pytest.raises(ValueError, match="empty"):
            cls([], lr=0.1)


def test_other_bad_hyper_parameters():
    with pytest.raises(ValueError, match="Nesterov"):
        O.SGD(_p(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        O.SGD(_p(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        O.SGD(_p(), lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="weight_decay"):
        O.Adam(_p(), weight_decay=-1.0)
    with pytest.raises(ValueError, match="epsilon"):
        O.RMSprop(_p(), eps=-1e-8)
    with pytest.raises(ValueError, match="alpha"):
        O.RMSprop(_p(), alpha=-0.5)
    with pytest.raises(TypeError):
        O.SGD(_p(), lr="0.1")


def test_sparse_gradient_raises():
    emb = torch.nn.Embedding(5, 3, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        O.Adam(emb.parameters()).step()


def test_adam_first_step_size_is_lr():
    # with bias correction m_hat = g and v_hat = g^2 on step 1, so each weight moves by
    # lr * g / (|g| + eps), about lr * sign(g): a closed-form check independent of torch
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    opt = O.Adam([p], lr=0.01, foreach=True)
    g = torch.tensor([0.5, -4.0, 1e-3], dtype=torch.float64)
    p.grad = g.clone()
    opt.step()
    expected = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64) - 0.01 * g / (g.abs() + 1e-8)
    torch.testing.assert_close(p.detach(), expected, **TIGHT)
    assert math.isclose(opt.state[p]["step"], 1)
