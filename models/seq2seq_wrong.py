"""Wrong attention modules for the RNN encoder-decoder: the mutants of rnn.rnn_attention.

Each subclasses the right module of :mod:`models.seq2seq` it mirrors and keeps its call,
``forward(query (B, Dq), keys (B, S, Dk), mask (B, S) bool, True = real)`` ->
(context (B, Dk), weights (B, S)); the task's check of the weights must catch each one
(``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch

from models.seq2seq import AdditiveAttention, MultiplicativeAttention


class MaskAfterSoftmax(MultiplicativeAttention):
    """WRONG: zeroes padded weights after the softmax: they are 0, but rows no longer sum to 1."""

    def forward(self, query, keys, mask, keys_proj=None):
        w = torch.softmax(torch.bmm(self.project_keys(keys), query[:, :, None])[..., 0], dim=-1) * mask  # (B, S)
        return torch.bmm(w[:, None, :], keys)[:, 0], w


class NoMask(AdditiveAttention):
    """WRONG: forgets the mask: padding takes part in the softmax."""

    def forward(self, query, keys, mask, keys_proj=None):
        return super().forward(query, keys, torch.ones_like(mask), keys_proj)


class SoftmaxOverBatch(MultiplicativeAttention):
    """WRONG: normalises over the batch axis instead of the source positions."""

    def forward(self, query, keys, mask, keys_proj=None):
        scores = torch.bmm(self.project_keys(keys), query[:, :, None])[..., 0]  # (B, S)
        w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=0).nan_to_num()  # (B, S), columns sum to 1
        return torch.bmm(w[:, None, :], keys)[:, 0], w
