"""2.04 sgd_momentum: trajectories equal torch.optim.SGD; wrong buffer initialisation is caught."""

import torch

import kernels.optim.optimizers as hand_optim
from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("autograd.sgd_momentum")


def test_check_passes():
    rec = run_check(Task)
    assert {
        f"{v} trajectory = torch.optim.SGD ({dt})" for v in ("loop", "foreach") for dt in ("float32", "float64")
    } | {"negative lr rejected", "Nesterov without momentum rejected", "non-leaf parameter rejected"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())
    # one table per dtype, one row per case and variant
    assert [len(t["rows"]) for t in rec.tables] == [8, 8]


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


def _with(opt_cls):
    class Wrong(Task):
        def make_optimizer(self, variant, params, **hp):
            if variant == "foreach":
                return opt_cls(params, **hp)
            return super().make_optimizer(variant, params, **hp)

    return Wrong


def test_zero_initialised_buffer_is_caught_by_the_dampening_case():
    err = expect_check_fails(_with(_ZeroInitSGD), match="foreach trajectory")
    assert "dampening" in str(err)


def test_nesterov_with_stale_buffer_is_caught():
    err = expect_check_fails(_with(_NesterovOldBuffer), match="foreach trajectory")
    assert "nesterov" in str(err)
