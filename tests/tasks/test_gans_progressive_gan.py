"""7.09 progressive_gan: fade-in blend, alpha schedule, resolutions, minibatch stddev, pixel norm."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from models.progan import minibatch_stddev

Task = REGISTRY.get("gans.progressive_gan")


def test_check_passes():
    rec = run_check(Task)
    assert {"fade-in blend", "alpha schedule", "minibatch stddev channel", "pixel norm: unit RMS per pixel"} <= set(
        rec.checks
    )
    assert all(c["passed"] for c in rec.checks.values())


def test_minibatch_stddev_rejects_a_ragged_batch():
    with pytest.raises(ValueError, match="divisible"):
        minibatch_stddev(torch.zeros(6, 2, 3, 3), group=4)
