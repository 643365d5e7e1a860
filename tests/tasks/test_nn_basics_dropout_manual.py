"""3.03 dropout_manual: the check passes for kernels.layers.dropout and catches planted bugs."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("nn_basics.dropout_manual")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert "bernoulli rule = F.dropout (same seed, CPU)" in rec.checks
    assert abs(rec.metrics["mean_out_over_x_p0.5"] - 1) < 0.01


class NoScale(Task):
    """Zeroes dropped elements but forgets the 1/(1-p) scale: E[out] = (1-p) x."""

    def drop(self, x, p, training=True, generator=None, rule="rand"):
        if not training or p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
        return x * keep


class KeepsWithP(Task):
    """Keeps with probability p instead of 1 - p (rand < p), scale still 1/(1-p)."""

    def drop(self, x, p, training=True, generator=None, rule="rand"):
        if not training or p in (0.0, 1.0):
            return super().drop(x, p, training, generator, rule)
        return x * (torch.rand(x.shape, generator=generator, device=x.device) < p) / (1 - p)


class DropsWholeRows(Task):
    """Feature-style dropout: one draw per row, so elements are not independent."""

    def drop(self, x, p, training=True, generator=None, rule="rand"):
        if not training or p in (0.0, 1.0):
            return super().drop(x, p, training, generator, rule)
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
        return x * keep[:, :1] / (1 - p)


class OtherRule(Task):
    """Right distribution, different rule: keeps where rand < 1 - p (mask not the seed's)."""

    def drop(self, x, p, training=True, generator=None, rule="rand"):
        if not training or p in (0.0, 1.0) or rule != "rand":
            return super().drop(x, p, training, generator, rule)
        return x * (torch.rand(x.shape, generator=generator, device=x.device) < 1 - p) / (1 - p)


class SameMaskEveryCall(Task):
    """Re-seeds a private generator on every call: the same mask forever."""

    def drop(self, x, p, training=True, generator=None, rule="rand"):
        if generator is None and training and rule == "rand":
            generator = torch.Generator().manual_seed(0)
        return super().drop(x, p, training, generator, rule)


class DropsInEval(Task):
    """Ignores the training flag."""

    def drop(self, x, p, training=True, generator=None, rule="rand"):
        return super().drop(x, p, True, generator, rule)


def test_missing_scale_is_caught():
    expect_check_fails(NoScale, match="scaled by 1/(1-p)")


def test_keep_probability_p_is_caught():
    expect_check_fails(KeepsWithP, match="keep rate")


def test_row_wise_mask_is_caught():
    expect_check_fails(DropsWholeRows, match="keep rate")


def test_other_mask_rule_is_caught():
    expect_check_fails(OtherRule, match="torch.rand")


def test_same_mask_every_call_is_caught():
    expect_check_fails(SameMaskEveryCall, match="same mask")


def test_dropout_in_eval_is_caught():
    expect_check_fails(DropsInEval, match="eval")
