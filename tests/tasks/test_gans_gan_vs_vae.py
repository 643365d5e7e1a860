"""7.10 gan_vs_vae: KL by torch.distributions, reparameterised gradients, both beat noise."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("gans.gan_vs_vae")


def test_check_passes():
    rec = run_check(Task)
    assert {"KL = torch.distributions.kl_divergence", "reparameterised gradients", "both beat noise"} <= set(rec.checks)
    assert all(c["passed"] for c in rec.checks.values())


def test_kl_is_zero_at_the_prior():
    assert float(Task().kl(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0
