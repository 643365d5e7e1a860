"""Small models the deployment tasks export (ONNX, TorchScript, torch.export, ExecuTorch, TensorRT).

They are kept tiny on purpose: exporting (torch.export, the ONNX exporter, ExecuTorch's
lowering) costs seconds per graph on a CPU whatever the width, so the checks use a few
thousand parameters and the benchmarks widen them through the config fields.

* :class:`SeqClassifier`: (B, T, F) float32 -> (B, C) logits. An input projection, one
  single-head self-attention block (``F.scaled_dot_product_attention``) with a residual
  and LayerNorm, GELU MLP, mean over T. Batch and sequence length are both free, which is
  what a dynamic-axes export has to keep.
* :class:`GatedMLP`: (B, D) -> (B, D) with a *data-dependent* branch (``x.sum() > 0`` picks
  one of two linear maps): what ``torch.jit.trace`` silently freezes and ``torch.jit.script``
  / ``torch.cond`` keep.
* :class:`CondGatedMLP`: the same function written with ``torch.cond`` so ``torch.export``
  can capture both branches; :class:`BranchDeletedMLP`, the wrong fix (the branch dropped).
* :class:`TinyConvNet`: (B, 1, H, W) -> (B, C) logits; Conv-BN-ReLU, depthwise conv,
  pooling, Dropout, Linear: the layer mix of a mobile CNN (MobileNet's depthwise separable
  convolution, Howard et al. 2017, arXiv:1704.04861). :class:`ConvNetConfig` sizes it and its
  input batch (the presets of 9.02 TorchScript, 9.09 TensorRT, 9.10 mobile).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class SeqClassifier(nn.Module):
    """(B, T, features) float -> (B, classes) logits; any B >= 1, T >= 1.

    Args:
        features: F, input features per step.
        dim: model width D.
        classes: C, output logits.
    """

    def __init__(self, features: int = 8, dim: int = 32, classes: int = 4):
        super().__init__()
        self.inp = nn.Linear(features, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)  # (B, T, D)
        # one head as a head dim of 1: (B, 1, T, D), the 4-D layout the ONNX exporter's SDPA takes
        q, k, v = self.qkv(h).unsqueeze(1).chunk(3, dim=-1)
        h = self.norm1(h + F.scaled_dot_product_attention(q, k, v).squeeze(1))  # (B, T, D)
        h = self.norm2(h + self.mlp(h))
        return self.head(h.mean(dim=1))  # (B, D) -> (B, C)


class GatedMLP(nn.Module):
    """(B, D) -> (B, D): ``pos(x)`` when ``x.sum() > 0`` else ``neg(x)``, both Linear(D, D).

    The branch depends on the *values* of the input, so a trace records only the branch
    its example input took.
    """

    def __init__(self, dim: int = 16):
        super().__init__()
        self.pos, self.neg = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return torch.relu(self.pos(x))
        return torch.tanh(self.neg(x))


class CondGatedMLP(GatedMLP):
    """:class:`GatedMLP` with the branch as ``torch.cond``: exportable with both branches."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda t: torch.relu(self.pos(t)), lambda t: torch.tanh(self.neg(t)), (x,))


class BranchDeletedMLP(GatedMLP):
    """:class:`GatedMLP` with torch.export's data-dependent error "fixed" by deleting the branch:
    always ``pos(x)``. A wrong model (9.02's ``branch_deleted`` mutant), equal only for sum > 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pos(x))


class TinyConvNet(nn.Module):
    """(B, 1, H, W) float -> (B, classes) logits (8x8 digits by default).

    Args:
        width: channels after the first convolution.
        classes: output logits.
    """

    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        # depthwise 3x3 then pointwise 1x1: MobileNet's separable convolution
        self.dw = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, groups=width),
            nn.Conv2d(width, 2 * width, 1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(2 * width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dw(self.stem(x))  # (B, 2w, H, W)
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)  # (B, 2w, 1, 1) -> (B, 2w)
        return self.head(h)


@dataclasses.dataclass(frozen=True)
class ConvNetConfig:
    """A :class:`TinyConvNet` and the (batch, 1, image, image) float32 input it is run on."""

    width: int = 8
    """channels after the first conv"""
    image: int = 8
    """input height = width (pixels)"""
    batch: int = 4
    """images per call"""

    def label(self) -> str:
        return f"w={self.width},img={self.image},B={self.batch}"

    def images(self, generator: torch.Generator | None = None, batch: int | None = None) -> torch.Tensor:
        """(batch, 1, image, image) float32 standard normal drawn from ``generator`` (the global
        RNG when None); ``batch`` defaults to the config's."""
        return torch.randn(self.batch if batch is None else batch, 1, self.image, self.image, generator=generator)

    def build(
        self,
        seed: int,
        generator: torch.Generator | None = None,
        *,
        batch: int | None = None,
        device: Any = "cpu",
        train: bool = True,
    ) -> tuple[TinyConvNet, torch.Tensor]:
        """``(model, x)``: ``TinyConvNet(width)`` initialised after ``torch.manual_seed(seed)``, in
        train mode unless ``train=False`` (eval mode, for inference), and
        ``x = self.images(generator, batch)``; both moved to ``device``."""
        torch.manual_seed(seed)
        return TinyConvNet(self.width).train(train).to(device), self.images(generator, batch).to(device)
