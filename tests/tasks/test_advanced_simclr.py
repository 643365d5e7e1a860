"""advanced.simclr: NT-Xent by hand and vs pytorch-metric-learning, views, probe (mutants: test_mutants.py)."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.ssl.contrastive import nt_xent, nt_xent_by_hand
from kernels.ssl.views import digit_view

Task = REGISTRY.get("advanced.simclr")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"NT-Xent = hand computation", "the trained encoder beats a random one (linear probe)"} <= set(rec.checks)


def test_nt_xent_equals_the_loop_on_random_views():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    for tau in (0.2, 1.0):
        want = nt_xent_by_hand(z1.tolist(), z2.tolist(), tau)
        assert float(nt_xent(z1, z2, tau)) == pytest.approx(want, rel=1e-12)


def test_identical_orthogonal_views_approach_zero_loss_at_low_temperature():
    z = torch.eye(4, dtype=torch.float64)  # 4 images, each view equal to its partner, the rest orthogonal
    assert float(nt_xent(z, z, 0.05)) < 1e-6


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="views must both be"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), 0.0)


def test_digit_view_is_seeded_and_keeps_the_shape():
    x = torch.rand(6, 64)
    a = digit_view(x, torch.Generator().manual_seed(1))
    b = digit_view(x, torch.Generator().manual_seed(1))
    assert a.shape == (6, 64)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, digit_view(x, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="digits"):
        digit_view(torch.rand(6, 63), torch.Generator())
