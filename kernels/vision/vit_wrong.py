"""Wrong ViT pieces: the mutants of transformers.vit_cifar100, each a plausible mistake.

Two wrong patch extractions with :func:`models.vit.patchify`'s signature (images (B, C, H, W) ->
patches (B, N, C*P*P)) and a ViT that pools instead of reading a class token; the task's check
(patches against the Conv2d embedding, ViT-B/16's parameter count) must catch each one
(``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch

from models.vit import ViT


def transposed_patches(x: torch.Tensor, P: int) -> torch.Tensor:
    """WRONG: each patch flattened column by column, (c, col, row) instead of (c, row, col)."""
    B, C, H, W = x.shape
    p = x.unfold(2, P, P).unfold(3, P, P)  # (B, C, H/P, W/P, P, P)
    return p.permute(0, 2, 3, 1, 5, 4).reshape(B, -1, C * P * P)


def column_major_patches(x: torch.Tensor, P: int) -> torch.Tensor:
    """WRONG: patches listed down the columns first instead of along the rows."""
    B, C, H, W = x.shape
    p = x.unfold(2, P, P).unfold(3, P, P)  # (B, C, H/P, W/P, P, P)
    return p.permute(0, 3, 2, 1, 4, 5).reshape(B, -1, C * P * P)


class MeanPooledViT(ViT):
    """WRONG for ViT-B/16: pools the patch tokens instead of reading a class token (no
    ``cls_token`` parameter, N position embeddings instead of N + 1)."""

    def __init__(self, config):
        super().__init__(config)
        del self.cls_token
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, config.n_patches, config.d_model))

    def tokens(self, x):
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed  # (B, N, E)

    def forward(self, x):
        h = self.tokens(x)
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h.mean(1)))
