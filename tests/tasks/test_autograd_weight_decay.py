"""2.09 weight_decay: L2 and decoupled decay by hand equal torch; decoupled-as-L2 is caught."""

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.optim.weight_decay import decoupled_decay_, l2_decay_

Task = REGISTRY.get("autograd.weight_decay")


def test_check_passes():
    rec = run_check(Task)
    for dt in ("float32", "float64"):
        for name in (
            "L2 by hand (loop) + SGD = torch SGD(weight_decay)",
            "L2 by hand (foreach) + SGD = torch SGD(weight_decay)",
            "L2 in the loss + SGD = torch SGD(weight_decay)",
            "decoupled by hand (loop) + Adam = torch AdamW",
            "decoupled by hand (foreach) + Adam = torch AdamW",
        ):
            assert rec.checks[f"{name} ({dt})"]["passed"]
        assert rec.metrics[f"adam_l2_vs_adamw_max_abs_gap_{dt}"] > 1e-3
    assert all(c["passed"] for c in rec.checks.values())


class DecoupledAsL2(Task):
    """'Decoupled' decay that adds wd * p to the gradient: that is Adam with L2, not AdamW."""

    def hand_decay(self, kind, params, *, lr, weight_decay, foreach):
        l2_decay_(params, weight_decay, foreach=foreach)


class DecayWithoutLr(Task):
    """Decoupled decay p <- p (1 - wd), forgetting the learning rate factor."""

    def hand_decay(self, kind, params, *, lr, weight_decay, foreach):
        if kind == "decoupled":
            decoupled_decay_(params, 1.0, weight_decay, foreach=foreach)
        else:
            l2_decay_(params, weight_decay, foreach=foreach)


class DecayTwice(Task):
    """L2 applied on top of SGD that already decays: wd counted twice."""

    def hand_decay(self, kind, params, *, lr, weight_decay, foreach):
        if kind == "l2":
            l2_decay_(params, 2 * weight_decay, foreach=foreach)
        else:
            decoupled_decay_(params, lr, weight_decay, foreach=foreach)


def test_decoupled_applied_as_l2_is_caught():
    expect_check_fails(DecoupledAsL2, match="decoupled by hand (loop) + Adam = torch AdamW")


def test_decoupled_without_lr_is_caught():
    expect_check_fails(DecayWithoutLr, match="torch AdamW")


def test_l2_twice_is_caught():
    expect_check_fails(DecayTwice, match="L2 by hand (loop) + SGD")
