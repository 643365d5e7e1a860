"""3.08 activations: all three train on the same seed and budget; planted bugs are caught."""

import dataclasses

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("nn_basics.activations")


def test_check_passes_with_curves_for_all_three():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    for name in ("train loss", "test accuracy"):
        assert {c["series"] for c in rec.curves if c["name"] == name} == {"relu", "tanh", "sigmoid"}


class FrozenSigmoid(Task):
    """The sigmoid net's parameters never get gradients (requires_grad=False): it cannot train."""

    def model(self, activation, cfg, ctx):
        m = super().model(activation, cfg, ctx)
        if activation == "sigmoid":
            for p in m.parameters():
                p.requires_grad_(False)
            m.net[0].weight.requires_grad_(True)  # Adam needs one trainable tensor; the net stays near chance
            m.net[0].weight.register_hook(lambda g: g * 0)
        return m


class OtherSeed(Task):
    """Tanh starts from different weights: the comparison is not on the same seed."""

    def model(self, activation, cfg, ctx):
        if activation != "tanh":
            return super().model(activation, cfg, ctx)
        ctx2 = type("C", (), {"rng_seed": ctx.rng_seed + 1, "device": ctx.device, "dtype": ctx.dtype})()
        return super().model(activation, cfg, ctx2)


class ShorterBudget(Task):
    """ReLU gets one epoch less."""

    def run(self, activation, cfg, ctx, data):
        if activation == "relu":
            cfg = dataclasses.replace(cfg, epochs=cfg.epochs - 1)
        return super().run(activation, cfg, ctx, data)


def test_activation_that_does_not_train_is_caught():
    expect_check_fails(FrozenSigmoid, match="sigmoid")


def test_different_seed_is_caught():
    expect_check_fails(OtherSeed, match="initial weights")


def test_unequal_budget_is_caught():
    expect_check_fails(ShorterBudget, match="budget")
