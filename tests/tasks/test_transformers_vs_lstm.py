"""6.05 vs_lstm: the check passes (its mutants, a Transformer without positions, an LSTM that does not learn
and budgets that differ between the models: test_mutants.py); the synthetic task labels the first key."""

import torch

from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("transformers.vs_lstm")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    names = {c["name"] for c in rec.curves}
    assert {"accuracy vs length", "train time vs length"} <= names
    assert {c["series"] for c in rec.curves if c["name"] == "accuracy vs length"} == {"transformer", "lstm"}


def test_first_token_recall_labels_the_first_key():
    config = Task.sizes["tiny"]
    x, y = config.data(200, 16, 0, "cpu")
    assert torch.equal(x[:, 0], 1 + y)
    assert ((x[:, 1:] >= 1) & (x[:, 1:] <= config.keys)).any()  # distractors present
