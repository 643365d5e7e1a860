"""m2.optimizers: own optimizers follow torch.optim step for step; planted Adam/SGD bugs are caught."""

import torch

import kernels.optim.optimizers as own_optim
from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m2.optimizers")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {t["name"] for t in rec.tables} == {"trajectory errors (float64)", "trajectory errors (float32)"}
    rows = rec.tables[0]["rows"]
    assert {r["setting"] for r in rows} >= {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"}
    assert {r["version"] for r in rows} == {"own_loop", "own_foreach"}


class _PlantedAdam(own_optim.Adam):
    """A per-tensor Adam (L2 decay, no AMSGrad) whose denominator the subclasses get wrong."""

    def denom(self, v, t, beta2, eps):
        raise NotImplementedError

    def _update(self, group, params):
        beta1, beta2 = group["betas"]
        for p in params:
            st = self.state[p]
            if not st:
                st.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            st["step"] += 1
            t = st["step"]
            g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
            st["exp_avg"].lerp_(g, 1 - beta1)
            st["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            step_size = self.step_size(group["lr"], t, beta1)
            p.addcdiv_(st["exp_avg"], self.denom(st["exp_avg_sq"], t, beta2, group["eps"]), value=-step_size)

    def step_size(self, lr, t, beta1):
        return lr / (1 - beta1**t)


class NoBiasCorrection(_PlantedAdam):
    def step_size(self, lr, t, beta1):
        return lr

    def denom(self, v, t, beta2, eps):
        return v.sqrt().add_(eps)


class EpsInsideSqrt(_PlantedAdam):
    def denom(self, v, t, beta2, eps):
        return (v / (1 - beta2**t) + eps).sqrt()


class RightAdam(_PlantedAdam):
    """The same scaffolding with the right formula: shows the planted classes differ only there."""

    def denom(self, v, t, beta2, eps):
        return (v.sqrt() / (1 - beta2**t) ** 0.5).add_(eps)


class NesterovWithOldBuffer(own_optim.SGD):
    """Nesterov look-ahead along the buffer *before* its update."""

    def _update(self, group, params):
        for p in params:
            g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
            st = self.state[p]
            if group["momentum"] == 0:
                p.add_(g, alpha=-group["lr"])
                continue
            old = st.get("momentum_buffer")
            buf = (
                g.clone() if old is None else old.clone().mul_(group["momentum"]).add_(g, alpha=1 - group["dampening"])
            )
            st["momentum_buffer"] = buf
            look = old if (group["nesterov"] and old is not None) else buf
            p.add_(g.add(look, alpha=group["momentum"]) if group["nesterov"] else buf, alpha=-group["lr"])


def _with(**classes):
    class Wrong(Task):
        own_classes = {**Task.own_classes, **classes}

    return Wrong


def test_adam_without_bias_correction_is_caught():
    expect_check_fails(_with(Adam=NoBiasCorrection), match="trajectory = torch.optim")


def test_eps_inside_the_sqrt_is_caught():
    expect_check_fails(_with(Adam=EpsInsideSqrt), match="trajectory = torch.optim")


def test_planted_scaffolding_alone_is_right():
    # guards the two tests above: only the planted line makes them fail
    torch.manual_seed(0)
    p1 = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    p2 = torch.nn.Parameter(p1.detach().clone())
    a, b = (
        RightAdam([p1], lr=1e-2, eps=1e-6, weight_decay=1e-3),
        torch.optim.Adam([p2], lr=1e-2, eps=1e-6, weight_decay=1e-3, foreach=False),
    )
    for _ in range(20):
        p1.grad = p1.detach() ** 2 - 1
        p2.grad = p2.detach() ** 2 - 1
        a.step()
        b.step()
    assert torch.equal(p1, p2)


def test_nesterov_with_stale_buffer_is_caught():
    expect_check_fails(_with(SGD=NesterovWithOldBuffer), match="own_loop trajectory")
