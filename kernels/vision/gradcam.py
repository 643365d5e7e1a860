"""Grad-CAM: class activation maps from gradients.

Source: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017, eqs. 1-2. For feature maps A (N, K, h, w) of a
chosen layer and the class score y^c (the logit, before softmax)::

    alpha_k^c = 1/(h*w) * sum_{i,j} d y^c / d A_k[i, j]        (spatially averaged gradient)
    L^c       = ReLU( sum_k alpha_k^c * A_k )                    (N, h, w)

The ReLU keeps only features with a positive influence on the class. For a network whose
head is global average pooling + Linear (the CAM setting of Zhou et al., CVPR 2016),
d y^c / d A_k[i, j] = W[c, k] / (h*w), so Grad-CAM is CAM scaled by 1/(h*w).

Two ways to get the maps of a batch: :func:`grad_cam` takes one backward pass for the
whole batch, since sample n's score depends only on sample n's features (eval mode, no
batch statistics), so the gradient of sum_n y_n^{c_n} w.r.t. A_n is d y_n / d A_n;
:func:`grad_cam_per_image` runs one forward and backward per image, as many tutorials do.
Gradients are taken with ``torch.autograd.grad`` w.r.t. the activations only, so no
parameter's ``.grad`` is touched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cam_from(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Eq. 1-2: ReLU(sum_k mean_ij(grad_k) * A_k). (N, K, h, w) x2 -> (N, h, w)."""
    if activations.shape != gradients.shape or activations.dim() != 4:
        raise ValueError(
            f"cam_from: activations {tuple(activations.shape)} and gradients "
            f"{tuple(gradients.shape)} must both be (N, K, h, w)"
        )
    alpha = gradients.mean(dim=(2, 3))  # (N, K)
    return torch.relu((alpha[:, :, None, None] * activations).sum(dim=1))  # (N, h, w)


def _scores_and_activations(model: nn.Module, layer: nn.Module, x: torch.Tensor, classes: torch.Tensor | None):
    store: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        store["a"] = output

    handle = layer.register_forward_hook(hook)
    try:
        logits = model(x)  # (N, classes)
    finally:
        handle.remove()
    if "a" not in store:
        raise ValueError("grad_cam: the target layer never ran in model(x); pass a submodule of the model")
    acts = store["a"]
    if acts.dim() != 4:
        raise ValueError(f"grad_cam: the target layer must output (N, K, h, w), got {tuple(acts.shape)}")
    if classes is None:
        classes = logits.argmax(dim=1)
    classes = classes.to(logits.device)
    if classes.shape != (x.shape[0],):
        raise ValueError(f"grad_cam: classes must be (N,) = ({x.shape[0]},), got {tuple(classes.shape)}")
    scores = logits.gather(1, classes[:, None]).squeeze(1)  # (N,) y^c per sample
    return scores, acts


def grad_cam(
    model: nn.Module, layer: nn.Module, x: torch.Tensor, classes: torch.Tensor | None = None, *, upsample: bool = False
) -> torch.Tensor:
    """Grad-CAM maps of a batch with one backward pass.

    Args:
        model: returns logits (N, num_classes); put it in eval mode first (BN in train
            mode couples the samples of a batch, and the maps would too).
        layer: the submodule whose output A (N, K, h, w) the maps are built on.
        x: inputs (N, ...).
        classes: int64 (N,) class per sample; None takes each sample's argmax.
        upsample: bilinearly resize the maps to x's (H, W) (as in the paper's figures).
    Returns (N, h, w) or (N, H, W), >= 0, detached.
    """
    with torch.enable_grad():
        scores, acts = _scores_and_activations(model, layer, x, classes)
        (grads,) = torch.autograd.grad(scores.sum(), acts)
    cam = cam_from(acts.detach(), grads)
    if upsample:
        cam = F.interpolate(cam[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return cam


def grad_cam_per_image(
    model: nn.Module, layer: nn.Module, x: torch.Tensor, classes: torch.Tensor | None = None, *, upsample: bool = False
) -> torch.Tensor:
    """Same maps as :func:`grad_cam`, one forward + backward per image (N passes)."""
    maps = [
        grad_cam(model, layer, x[i : i + 1], None if classes is None else classes[i : i + 1], upsample=upsample)
        for i in range(x.shape[0])
    ]
    return torch.cat(maps)
