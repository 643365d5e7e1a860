"""6.05 vs_lstm: the check passes; a Transformer without positional information, an LSTM that
does not learn, and budgets that differ between the models are caught."""

import dataclasses

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from harness.train import fit

Task = REGISTRY.get("transformers.vs_lstm")
module = __import__(Task.__module__, fromlist=["first_token_recall"])
#: a shorter budget for the planted runs (each bug shows long before 200 steps)
SHORT = {"tiny": dataclasses.replace(Task.sizes["tiny"], steps=120)}


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    names = {c["name"] for c in rec.curves}
    assert {"accuracy vs length", "train time vs length"} <= names
    assert {c["series"] for c in rec.curves if c["name"] == "accuracy vs length"} == {"transformer", "lstm"}


def test_first_token_recall_labels_the_first_key():
    config = Task.sizes["tiny"]
    x, y = module.first_token_recall(200, 16, config, 0)
    assert torch.equal(x[:, 0], 1 + y)
    assert ((x[:, 1:] >= 1) & (x[:, 1:] <= config.keys)).any()  # distractors present


def test_transformer_without_positions_is_caught():
    class Wrong(Task):
        sizes = SHORT

        def make_model(self, variant, config, T):
            model = super().make_model(variant, config, T)
            if variant == "transformer":
                model.encoder.pos = None  # a bag of tokens cannot tell which key came first
            return model

    expect_check_fails(Wrong, match="Transformer reached only")


def test_lstm_that_does_not_learn_is_caught():
    class Wrong(Task):
        sizes = SHORT

        def make_model(self, variant, config, T):
            model = super().make_model(variant, config, T)
            if variant == "lstm":
                for p in model.parameters():
                    p.requires_grad_(False)
                model.head.weight.requires_grad_(True)  # only the head trains: nothing is remembered
                with torch.no_grad():
                    model.embed.weight.zero_()
            return model

    expect_check_fails(Wrong, match="lstm reached only")


def test_unequal_budgets_are_caught(monkeypatch):
    def short_fit(model, opt, train, **kw):
        if not hasattr(model, "encoder"):  # the LSTM gets half the steps
            kw["max_steps"] = kw["max_steps"] // 2
        return fit(model, opt, train, **kw)

    monkeypatch.setattr(module, "fit", short_fit)

    class Short(Task):
        sizes = SHORT

    expect_check_fails(Short, match="budgets differ")
