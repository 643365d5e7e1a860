"""m2.cifar10_own_adam: own Adam's loss curve equals torch's on a CNN; the CIFAR reader path is checked;
planted optimizer and loader bugs are caught."""

import dataclasses

import torch

import kernels.optim.optimizers as own_optim
from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m2.cifar10_own_adam")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {
        "CIFAR train pixels read back",
        "own_adam: loss curve = torch Adam's",
        "own_adam_foreach: loss curve = torch Adam's",
    } <= set(rec.checks)
    assert any("SYNTHETIC" in n for n in rec.notes)


class AdamNoBiasCorrection(own_optim.Adam):
    """Adam without the 1 / (1 - beta^t) corrections (early steps far too small)."""

    def _update(self, group, params):
        beta1, beta2 = group["betas"]
        for p in params:
            st = self.state[p]
            if not st:
                st.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            st["step"] += 1
            st["exp_avg"].lerp_(p.grad, 1 - beta1)
            st["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            p.addcdiv_(st["exp_avg"], st["exp_avg_sq"].sqrt().add_(group["eps"]), value=-group["lr"])


def test_adam_without_bias_correction_is_caught():
    class Wrong(Task):
        adam_cls = AdamNoBiasCorrection

    expect_check_fails(Wrong, match="loss curve = torch Adam's")


def _loader_swapping_channels(config, data_dir=None):
    tr, te, desc = Task.loader(config, data_dir)
    return dataclasses.replace(tr, images=tr.images.flip(1)), te, desc  # RGB read as BGR


def _loader_dropping_last_batch(config, data_dir=None):
    tr, te, desc = Task.loader(config, data_dir)
    if data_dir is not None:
        tr = tr.take(torch.arange(len(tr) - 2))  # data_batch_5 forgotten
    return tr, te, desc


def test_loader_swapping_channels_is_caught():
    class Wrong(Task):
        loader = staticmethod(_loader_swapping_channels)

    expect_check_fails(Wrong, match="pixels")


def test_loader_dropping_a_batch_is_caught():
    class Wrong(Task):
        loader = staticmethod(_loader_dropping_last_batch)

    expect_check_fails(Wrong, match="train pixels")
