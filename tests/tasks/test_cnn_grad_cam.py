"""4.05 grad_cam: the check passes (mutants: test_mutants.py); cam_from's errors and shapes."""

import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.vision import gradcam

Task = REGISTRY.get("cnn.grad_cam")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["planted_patch_argmax_hit_rate"] >= 0.9
    assert rec.metrics["planted_patch_mean_inside_over_outside"] > 2


def test_cam_from_rejects_mismatched_shapes():
    import pytest

    with pytest.raises(ValueError, match="must both be"):
        gradcam.cam_from(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3))


def test_upsampled_maps_have_input_size():
    task = Task()
    model, layer, x, classes = task.inputs(Task.sizes["tiny"][0], "cpu", torch.float32, 0)
    cam = gradcam.grad_cam(model, layer, x, classes, upsample=True)
    assert cam.shape == (x.shape[0], *x.shape[-2:]) and bool((cam >= 0).all())
