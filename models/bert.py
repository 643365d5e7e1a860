"""BERT (Devlin et al. 2019) on ``models.transformer.Stack``: token-type embeddings, pooler, MLM head.

BERT-base: 12 layers, d_model 768, 12 heads, MLP 3072, 512 positions, 2 token types, the
30,522-entry uncased WordPiece vocabulary. ``Stack``'s blocks are pre-LN where BERT's are post-LN
and its final LayerNorm stands where BERT's embedding LayerNorm is: the parameter tensors (and
so the count) are the same, the layout of the normalisation is not.
"""

from __future__ import annotations

import torch
from torch import nn

from models.transformer import Stack, TransformerConfig

BERT_VOCAB = 30_522
BERT_BASE = TransformerConfig(d_model=768, n_heads=12, n_layers=12, d_ff=3072, max_len=512)
BERT_LARGE = TransformerConfig(d_model=1024, n_heads=16, n_layers=24, d_ff=4096, max_len=512)
#: Hugging Face ``BertModel`` (embeddings, encoder, pooler; no MLM head): the paper's "110M" and "340M"
BERT_BASE_PARAMS, BERT_LARGE_PARAMS = 109_482_240, 335_141_888


class BertMLM(nn.Module):
    """ids (B, T) -> MLM logits (B, T, V); ``body_parameters()`` are BertModel's (the published count).

    The MLM head (dense + GELU + LayerNorm, decoder tied to the token embedding, bias) is the
    pre-training head, outside the published count."""

    def __init__(self, config: TransformerConfig, vocab_size: int, pad_id: int = 0, type_vocab: int = 2):
        super().__init__()
        E = config.d_model
        self.encoder = Stack(config, vocab_size, pad_id=pad_id)
        self.token_type = nn.Embedding(type_vocab, E)
        self.pooler = nn.Linear(E, E)  # tanh(W h_[CLS] + b), for next-sentence prediction
        self.head = nn.Sequential(nn.Linear(E, E), nn.GELU(), nn.LayerNorm(E))
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.pad_id = pad_id

    def body_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.token_type.parameters(), *self.pooler.parameters()]

    def forward(self, ids: torch.Tensor, token_types: torch.Tensor | None = None) -> torch.Tensor:
        """ids, token_types (B, T) int64 (types default to segment 0) -> logits (B, T, V)."""
        types = torch.zeros_like(ids) if token_types is None else token_types
        x = self.encoder.tok(ids) + self.token_type(types)  # (B, T, E)
        x = self.encoder.pos(x, 0)  # + learned positions
        for block in self.encoder.blocks:
            x = block(x, key_pad=ids == self.pad_id)
        h = self.encoder.ln_f(x)  # (B, T, E)
        return self.head(h) @ self.encoder.tok.weight.t() + self.bias  # (B, T, V), decoder tied
