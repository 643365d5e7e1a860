"""A small causal byte-level Transformer language model, post-LayerNorm as in Vaswani et al.
2017 ("Attention Is All You Need"): ``nn.TransformerEncoder`` layers under a causal mask.

Post-LN is the layout whose early training has a few steps with very large gradients
(Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture"), which makes it
the model m2.transformer_clipping needs.
"""

from __future__ import annotations

import torch
from torch import nn


class PostLNByteLM(nn.Module):
    """ids (B, T) int64 in 0..255 -> next-byte logits (B, T, 256).

    Args:
        dim: model width (embedding size); each layer's MLP is 4 * dim.
        layers: encoder layers, each under a causal mask.
        heads: attention heads per layer (must divide ``dim``).
        context: longest sequence T (learned position embeddings).
    """

    def __init__(self, dim: int, layers: int, heads: int, context: int):
        super().__init__()
        self.tok = nn.Embedding(256, dim)
        self.pos = nn.Embedding(context, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, 256)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))  # (B, T, D)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)  # (T, T), -inf above the diagonal
        return self.head(self.blocks(x, mask=mask, is_causal=True))  # (B, T, 256)
