"""7.08 stylegan_like: modulated conv by hand, grouped = loop, demodulation, mapping, noise."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from models.stylegan import modconv_grouped, modconv_loop

Task = REGISTRY.get("gans.stylegan_like")


def test_check_passes():
    rec = run_check(Task)
    assert {"grouped", "per_sample_loop", "demodulation keeps std", "mapping: equalised learning rate"} <= set(
        rec.checks
    )
    assert all(c["passed"] for c in rec.checks.values())


def test_grouped_equals_loop_without_demodulation():
    x, w, s = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.rand(3, 4)
    torch.testing.assert_close(modconv_grouped(x, w, s, False), modconv_loop(x, w, s, False))
