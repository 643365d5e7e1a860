"""2.10 grad_accumulation: accumulated gradients equal the full-batch ones; planted bugs are caught."""

import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("autograd.grad_accumulation")


def test_check_passes():
    rec = run_check(Task)
    assert set(rec.checks) == {
        "accumulated (even micro-batches)",
        "accumulated (uneven micro-batches)",
        "parameters after 5 SGD steps",
        "BatchNorm breaks the equivalence",
    }
    assert all(c["passed"] for c in rec.checks.values())


class NoScale(Task):
    """Sums the micro-batch mean losses: the gradient comes out k times too large."""

    def accumulated_backward(self, model, x, y, k):
        model.zero_grad(set_to_none=True)
        for xb, yb in zip(torch.tensor_split(x, k), torch.tensor_split(y, k)):
            F.cross_entropy(model(xb), yb).backward()
        return torch.zeros(())


class OneOverK(Task):
    """Scales by 1/k: right for equal micro-batches, wrong when their sizes differ."""

    def accumulated_backward(self, model, x, y, k):
        model.zero_grad(set_to_none=True)
        for xb, yb in zip(torch.tensor_split(x, k), torch.tensor_split(y, k)):
            (F.cross_entropy(model(xb), yb) / k).backward()
        return torch.zeros(())


class NoZeroGrad(Task):
    """Never clears .grad: the previous backward's gradient is added in."""

    def accumulated_backward(self, model, x, y, k):
        for xb, yb in zip(torch.tensor_split(x, k), torch.tensor_split(y, k)):
            (F.cross_entropy(model(xb), yb) * (xb.shape[0] / x.shape[0])).backward()
        return torch.zeros(())


class SecretlyFullBatch(Task):
    """'Accumulates' by running the whole batch at once: BN then cannot differ."""

    def accumulated_backward(self, model, x, y, k):
        return self.full_batch_backward(model, x, y, 1)


def test_missing_loss_scale_is_caught():
    expect_check_fails(NoScale, match="accumulated (even micro-batches)")


def test_one_over_k_with_uneven_micro_batches_is_caught():
    expect_check_fails(OneOverK, match="accumulated (uneven micro-batches)")


def test_stale_gradients_are_caught():
    expect_check_fails(NoZeroGrad, match="accumulated (even micro-batches)")


def test_batchnorm_check_can_fail():
    expect_check_fails(SecretlyFullBatch, match="BatchNorm")
