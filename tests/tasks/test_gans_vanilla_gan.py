"""7.01 vanilla_gan: losses by hand, the two steps leave each other's net alone (mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("gans.vanilla_gan")


def test_check_passes():
    rec = run_check(Task)
    assert {"discriminator loss", "D step leaves G alone", "G step leaves D alone", "samples in range"} <= set(
        rec.checks
    )
    assert all(c["passed"] for c in rec.checks.values())


def test_non_saturating_loss_keeps_its_gradient_when_d_rejects_fakes():
    # D confidently rejects (logit -8): d/dlogit of log(1 - sigmoid) ~ 3e-4, of -log sigmoid ~ 1
    logit = torch.tensor([-8.0], requires_grad=True)
    Task().g_loss(logit).backward()
    assert abs(float(logit.grad)) > 0.9
