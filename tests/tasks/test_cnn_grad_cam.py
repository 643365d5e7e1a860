"""4.05 grad_cam: the check passes; maps without the ReLU, with summed instead of averaged
gradients, for the predicted instead of the requested class, or inverted are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, planted, run_check
from kernels.vision import gradcam

Task = REGISTRY.get("cnn.grad_cam")


def _maps(model, layer, x, classes):
    store = {}
    h = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
    with torch.enable_grad():
        logits = model(x)
        h.remove()
        score = logits.gather(1, classes[:, None]).sum()
        (g,) = torch.autograd.grad(score, store["a"])
    return store["a"].detach(), g


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["planted_patch_argmax_hit_rate"] >= 0.9
    assert rec.metrics["planted_patch_mean_inside_over_outside"] > 2


def test_map_without_relu_is_caught():
    def no_relu(self, model, layer, x, classes):
        def run():
            a, g = _maps(model, layer, x, classes)
            return (g.mean(dim=(2, 3))[:, :, None, None] * a).sum(1)

        return run

    expect_check_fails(planted(Task, "batched", no_relu), match="batched")


def test_summed_gradients_are_caught():
    def summed(self, model, layer, x, classes):
        def run():
            a, g = _maps(model, layer, x, classes)
            return torch.relu((g.sum(dim=(2, 3))[:, :, None, None] * a).sum(1))

        return run

    expect_check_fails(planted(Task, "batched", summed), match="batched")


def test_predicted_instead_of_requested_class_is_caught():
    expect_check_fails(
        planted(Task, "per_image", lambda self, m, layer, x, c: lambda: gradcam.grad_cam_per_image(m, layer, x, None)),
        match="per_image",
    )


def test_inverted_map_is_caught():
    def inverted(self, model, layer, x, classes):
        def run():
            cam = gradcam.grad_cam(model, layer, x, classes)
            return cam.amax(dim=(1, 2), keepdim=True) - cam

        return run

    expect_check_fails(planted(Task, "batched", inverted), match="batched")


def test_cam_from_rejects_mismatched_shapes():
    import pytest

    with pytest.raises(ValueError, match="must both be"):
        gradcam.cam_from(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3))


def test_upsampled_maps_have_input_size():
    task = Task()
    model, layer, x, classes = task.inputs(Task.sizes["tiny"][0], "cpu", torch.float32, 0)
    cam = gradcam.grad_cam(model, layer, x, classes, upsample=True)
    assert cam.shape == (x.shape[0], *x.shape[-2:]) and bool((cam >= 0).all())
