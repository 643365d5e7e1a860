"""Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021).

An image (B, C, H, W) is cut into N = (H/P) * (W/P) non-overlapping P x P patches, each
flattened and linearly projected to E features (done as a Conv2d with kernel = stride = P,
which is the same linear map); a learned class token is prepended, learned position
embeddings (N + 1 of them) are added, and pre-LN Transformer blocks
(``models.transformer.Block``) follow; the classifier reads the class token after a final
LayerNorm.

:func:`patchify` is the same patch extraction written by hand (``Tensor.unfold``), with the
features of a patch ordered (channel, row, column), the order of the conv weight
``(E, C, P, P).reshape(E, C*P*P)``; :func:`patch_embed_by_hand` applies the conv's weights
to it.

Shape legend: B batch, C channels, H/W image height/width (pixels), P patch side, N
patches, E width, K classes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.transformer import Block, TransformerConfig


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """Shape of a ViT. Defaults are ViT-B/16 at 224x224 with a 1000-class head (86,567,656 parameters)."""

    image_size: int = 224
    """H = W of the input, pixels"""
    patch_size: int = 16
    """P: side of a square patch, pixels (image_size divisible by it)"""
    in_channels: int = 3
    """C: image channels"""
    num_classes: int = 1000
    """K: outputs of the classifier head"""
    d_model: int = 768
    """E: features per token"""
    depth: int = 12
    """Transformer blocks"""
    n_heads: int = 12
    """attention heads (d_model divisible by it)"""
    mlp_dim: int = 3072
    """hidden features of each block's MLP"""
    dropout: float = 0.0
    """dropout after the embeddings and inside blocks (training only)"""

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"ViTConfig: image_size {self.image_size} must be divisible by patch_size {self.patch_size}"
            )
        if self.d_model % self.n_heads:
            raise ValueError(f"ViTConfig: d_model {self.d_model} must be divisible by n_heads {self.n_heads}")

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


PRESETS: dict[str, ViTConfig] = {
    "b16": ViTConfig(),  # ViT-B/16, Dosovitskiy et al. Table 1
    # 8x8 digits upsampled to 16x16, 4x4 patches: 16 tokens
    "tiny": ViTConfig(
        image_size=16, patch_size=4, in_channels=1, num_classes=10, d_model=64, depth=2, n_heads=4, mlp_dim=128
    ),
    # CIFAR-100 at 32x32 with 4x4 patches (64 tokens), a small width for CPU runs
    "cifar_small": ViTConfig(
        image_size=32, patch_size=4, num_classes=100, d_model=128, depth=4, n_heads=4, mlp_dim=256
    ),
    # ViT-Tiny width (Touvron et al. 2021, DeiT-Ti) at 32x32
    "cifar": ViTConfig(image_size=32, patch_size=4, num_classes=100, d_model=192, depth=12, n_heads=3, mlp_dim=768),
}


def preset(name: str, **overrides: Any) -> ViTConfig:
    """A named config (``b16``, ``tiny``, ``cifar_small``, ``cifar``) with fields replaced by ``overrides``."""
    if name not in PRESETS:
        raise ValueError(f"unknown ViT preset {name!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Images (B, C, H, W) -> patches (B, N, C*P*P), patches in row-major order, features (c, row, col).

    Raises ValueError when H or W is not a multiple of ``patch``.
    """
    B, C, H, W = x.shape
    if H % patch or W % patch:
        raise ValueError(f"patchify: image {H}x{W} is not a whole number of {patch}x{patch} patches")
    p = x.unfold(2, patch, patch).unfold(3, patch, patch)  # (B, C, H/P, W/P, P, P)
    return p.permute(0, 2, 3, 1, 4, 5).reshape(B, (H // patch) * (W // patch), C * patch * patch)  # (B, N, C*P*P)


def patch_embed_by_hand(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The Conv2d patch embedding as patchify + matmul: x (B, C, H, W), weight (E, C, P, P) -> (B, N, E)."""
    E, P = weight.shape[0], weight.shape[-1]
    return F.linear(patchify(x, P), weight.reshape(E, -1), bias)


class ViT(nn.Module):
    """images (B, C, H, W) -> logits (B, K). Raises ValueError for an image of the wrong size."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        c, E = config, config.d_model
        self.config = config
        self.patch_embed = nn.Conv2d(c.in_channels, E, c.patch_size, stride=c.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, E))
        self.pos_embed = nn.Parameter(torch.randn(1, c.n_patches + 1, E) * 0.02)
        block_cfg = TransformerConfig(
            d_model=E, n_heads=c.n_heads, n_layers=c.depth, d_ff=c.mlp_dim, max_len=c.n_patches + 1, dropout=c.dropout
        )
        self.blocks = nn.ModuleList(Block(block_cfg) for _ in range(c.depth))
        self.norm = nn.LayerNorm(E)
        self.head = nn.Linear(E, c.num_classes)
        self.drop = nn.Dropout(c.dropout)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with the class token and positions: (B, N + 1, E)."""
        c = self.config
        if x.dim() != 4 or x.shape[1:] != (c.in_channels, c.image_size, c.image_size):
            raise ValueError(
                f"ViT: expected images (B, {c.in_channels}, {c.image_size}, {c.image_size}), got {tuple(x.shape)}"
            )
        p = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, E, H/P, W/P) -> (B, N, E)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, E)
        return self.drop(torch.cat([cls, p], 1) + self.pos_embed)  # (B, N + 1, E)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tokens(x)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h[:, 0]))  # class token -> (B, K)


def params_by_component(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level component, in ``named_parameters`` order (the module's own
    parameters first): for a :class:`ViT` ``cls_token``, ``pos_embed``, ``patch_embed``,
    ``blocks``, ``norm``, ``head``."""
    groups: dict[str, int] = {}
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        groups[top] = groups.get(top, 0) + p.numel()
    return groups


@torch.no_grad()
def class_token_attention(model: ViT, image: torch.Tensor) -> torch.Tensor:
    """Where the class token looks: its last-layer attention over the patches of one image
    (1, C, H, W), averaged over heads, as a (H/P, W/P) grid (rows top to bottom)."""
    from kernels.layers.attention_maps import record_attention

    with record_attention(model) as maps:
        model(image)
    g = model.config.image_size // model.config.patch_size
    return maps[-1][0].mean(0)[0, 1:].reshape(g, g)  # (H, N + 1, N + 1) -> class row over the N patches


def block_flops(config: ViTConfig) -> int:
    """Floating-point operations of the Transformer blocks for one image (2 per multiply-add):
    per layer and token, 4 E^2 for the Q, K, V and output projections, 2 E M for the MLP and
    2 T E for Q K^T and the weighted sum of V, with T = N + 1 tokens. Patch embedding, norms,
    softmax, GELU and head are left out (together about 1 % of ViT-B/16's)."""
    T, E = config.n_patches + 1, config.d_model
    return 2 * T * config.depth * (4 * E * E + 2 * E * config.mlp_dim + 2 * T * E)
