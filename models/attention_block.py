"""A single-head pre-norm attention block that classifies every position: the smallest model
that has each kind of op autocast treats differently (Linear, GELU, LayerNorm, softmax,
matmul, cross-entropy). Used by m2.manual_amp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AttentionBlock(nn.Module):
    """x (B, T, D) -> logits (B, T, classes): LayerNorm, softmax attention, GELU MLP (4 D wide).

    Args:
        dim: D, the model width.
        classes: logits per position.
    """

    def __init__(self, dim: int, classes: int = 10):
        super().__init__()
        d = dim
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)  # 3 x (B, T, D)
        att = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)  # (B, T, T)
        x = x + self.proj(att @ v)  # (B, T, D)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))  # (B, T, D)
        return self.head(x)  # (B, T, classes)
