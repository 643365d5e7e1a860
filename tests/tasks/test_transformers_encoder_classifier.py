"""6.02 encoder_classifier: the check passes; pooling over the padding, attention that does
not mask padding keys, and a model that does not learn are caught."""

import dataclasses

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from models.transformer import EncoderClassifier

Task = REGISTRY.get("transformers.encoder_classifier")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["padding does not change the logits"]["n"] == 36
    assert rec.metrics["final_accuracy"] >= 0.7
    assert any("SYNTHETIC" in n for n in rec.notes)


class PoolsOverPadding(EncoderClassifier):
    def forward(self, ids):
        h = self.encoder(ids, key_pad=ids == self.pad_id)
        return self.head(h.mean(1))  # the mean includes the padding positions


class AttendsToPadding(EncoderClassifier):
    def forward(self, ids):
        pad = ids == self.pad_id
        h = self.encoder(ids)  # no key padding mask
        keep = (~pad).unsqueeze(-1).float()
        return self.head((h * keep).sum(1) / keep.sum(1))


def test_pooling_over_padding_is_caught():
    class Wrong(Task):
        model_cls = PoolsOverPadding

    expect_check_fails(Wrong, match="pad tokens")


def test_unmasked_padding_keys_are_caught():
    class Wrong(Task):
        model_cls = AttendsToPadding

    expect_check_fails(Wrong, match="pad tokens")


def test_model_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.0, epochs=1)}

    expect_check_fails(Wrong, match="held-out accuracy")
