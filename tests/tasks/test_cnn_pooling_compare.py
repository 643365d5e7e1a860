"""4.08 pooling_compare: the check passes; a variant whose pooling layer is missing, a
config whose shape arithmetic is wrong, and a variant that does not learn are caught."""

import dataclasses

from torch import nn

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from models.convnets import SmallCNNConfig

Task = REGISTRY.get("cnn.pooling_compare")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["series"] for c in rec.curves if c["name"] == "test accuracy"} == set(Task.variants)
    rows = {r["variant"]: r for r in rec.tables[0]["rows"]}
    assert rows["no_pool"]["params"] > rows["maxpool"]["params"]


class DropsPooling(Task):
    def model(self, ctx, config, variant):
        net = super().model(ctx, config, variant)
        if variant == "avgpool":
            net.features[1][-1] = nn.Identity()  # the second stage forgets its pooling
        return net


def test_missing_pooling_layer_is_caught():
    expect_check_fails(DropsPooling, match="avgpool")


class WrongArithmetic(SmallCNNConfig):
    def stage_shapes(self):
        return [(c, h - 1, w) for c, h, w in super().stage_shapes()]


def test_wrong_config_arithmetic_is_caught(monkeypatch):
    module = __import__(Task.__module__, fromlist=["SmallCNNConfig"])
    monkeypatch.setattr(module, "SmallCNNConfig", WrongArithmetic)
    expect_check_fails(Task, match="the config's arithmetic")


def test_variant_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = {"tiny": dataclasses.replace(Task.sizes["tiny"], lr=0.0, epochs=1)}

    expect_check_fails(Wrong, match="test accuracy")
