"""3.10 tensorboard_logging: scalars read back equal those written (mutants: test_mutants.py)."""

import pytest

from harness import REGISTRY
from harness.testing import run_check

pytest.importorskip("tensorboard", reason="needs tensorboard (pip install 'torchdrills[data]')")
Task = REGISTRY.get("nn_basics.tensorboard_logging")


def test_check_passes_and_curves_come_from_the_file():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {c["name"] for c in rec.curves} == {"train/loss", "train/lr", "test/accuracy"}
