"""2.07 cross_entropy: the check passes and catches smoothing applied to ignored targets."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.layers.losses import cross_entropy, log_softmax

Task = REGISTRY.get("autograd.cross_entropy")
mod = __import__(Task.__module__, fromlist=["x"])


def test_check_passes():
    rec = run_check(Task)
    assert {
        "torch_ce",
        "own",
        "gradcheck + gradgradcheck float64",
        "all-ignored mean is NaN",
        "mismatched shapes rejected",
        "mismatched probability target rejected",
        "class index out of range rejected",
    } <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def _hand_ce(x, target, weight, reduction, ignore_index, label_smoothing, smooth_ignored=False, mean_by_count=False):
    """Index-target cross-entropy with two switchable bugs."""
    cdim = 0 if x.dim() == 1 else 1
    c = x.shape[cdim]
    logp = log_softmax(x, cdim)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros((), dtype=target.dtype))
    picked = logp.gather(cdim, safe.unsqueeze(cdim)).squeeze(cdim)
    w = torch.ones(c, dtype=x.dtype) if weight is None else weight
    w_t = w[safe] * valid
    per_class = logp * w.reshape((c,) + (1,) * (x.dim() - cdim - 1))
    smooth = -per_class.sum(cdim)
    if not smooth_ignored:
        smooth = smooth * valid  # the planted bug skips this mask
    eps = label_smoothing
    loss = (1 - eps) * (-picked * w_t) + eps / c * smooth
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (valid.sum() if mean_by_count else w_t.sum())


def _planted(**bug):
    def own(self, x, target, weight, g, kwargs):
        def loss(t):
            if target.is_floating_point():
                return cross_entropy(t, target, weight, **kwargs)
            return _hand_ce(t, target, weight, **kwargs, **bug)

        return lambda: mod._fwd_bwd(loss, x, g)

    return planted(Task, "own", own)


def test_hand_reference_without_bugs_passes():
    run_check(_planted())


def test_smoothing_applied_to_ignored_targets_is_caught():
    expect_check_fails(_planted(smooth_ignored=True), match="own")


def test_weighted_mean_divided_by_count_is_caught():
    expect_check_fails(_planted(mean_by_count=True), match="own")
