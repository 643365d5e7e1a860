"""Wrong text classifiers: the mutants of transformers.encoder_classifier, each a padding mistake.

Each subclasses :class:`models.transformer.EncoderClassifier` (ids (B, T) int64 -> logits (B, C))
and lets the padding in; the task's check (logits of a review alone, padded, or batched beside a
longer one must agree) must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

from models.transformer import EncoderClassifier


class PoolsOverPadding(EncoderClassifier):
    """WRONG: attention masks the padding keys, but the mean pools over the padding positions too."""

    def forward(self, ids):
        h = self.encoder(ids, key_pad=ids == self.pad_id)  # (B, T, E)
        return self.head(h.mean(1))


class AttendsToPadding(EncoderClassifier):
    """WRONG: the mean skips padding, but attention has no key padding mask, so real tokens attend to it."""

    def forward(self, ids):
        h = self.encoder(ids)  # (B, T, E)
        keep = (ids != self.pad_id).unsqueeze(-1).float()  # (B, T, 1)
        return self.head((h * keep).sum(1) / keep.sum(1))
