"""3.05 weight_updates: recorded ratios equal the parameter deltas; planted recorders are caught."""

import torch

from harness import REGISTRY
from harness.context import Context
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("nn_basics.weight_updates")
Tracker = type(Task().make_tracker(torch.nn.Linear(2, 2)))


def test_check_passes_and_plots_every_layer():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves} == {"net.0.weight", "net.2.weight", "net.4.weight"}


class GradOverWeight(Tracker):
    """Records ||grad|| / ||W|| (forgets the learning rate and the optimizer's transform)."""

    @torch.no_grad()
    def after_step(self):
        self.pending.append(torch.stack([p.grad.norm() / q.norm() for p, q in zip(self.params, self.prev)]))


class AgainstNewWeights(Tracker):
    """Divides by ||W_{t+1}|| instead of ||W_t||."""

    @torch.no_grad()
    def after_step(self):
        self.pending.append(torch.stack([(p - q).norm() / p.norm() for p, q in zip(self.params, self.prev)]))


class NeverResnapshots(Tracker):
    """Keeps W_0 as the reference: records the cumulative change, not the step's."""

    def before_step(self):
        pass


class OneStepLate(Tracker):
    """Records the previous step's ratio (a zero first)."""

    def __init__(self, model):
        super().__init__(model)
        self.last = torch.zeros(len(self.params))

    @torch.no_grad()
    def after_step(self):
        now = torch.stack([(p - q).norm() / q.norm() for p, q in zip(self.params, self.prev)])
        self.pending.append(self.last)
        self.last = now


def _with(cls):
    return type("T", (Task,), {"make_tracker": lambda self, model: cls(model)})


def test_grad_norm_instead_of_update_is_caught():
    expect_check_fails(_with(GradOverWeight), match="independent parameter deltas")


def test_ratio_against_new_weights_is_caught():
    expect_check_fails(_with(AgainstNewWeights), match="independent parameter deltas")


def test_cumulative_change_is_caught():
    expect_check_fails(_with(NeverResnapshots), match="independent parameter deltas")


def test_one_step_late_is_caught():
    expect_check_fails(_with(OneStepLate), match="independent parameter deltas")


def test_prepare_runs_every_variant():
    ctx = Context(Task, mode="bench")
    for v in Task.variants:
        Task().prepare(ctx, v, ctx.configs[0]).fn()
