"""m1.grad_hooks: logged gradients equal .grad, scaling is exact; its mutants: test_mutants.py."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.autograd.hooks import GradLogger

Task = REGISTRY.get("m1.grad_hooks")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {
        "logged value equals .grad",
        "parameter hook scales exactly",
        "activation hook: power-of-two scale exact upstream",
        "post-accumulate hook logs .grad",
    } <= set(rec.checks)


def test_logger_rejects_bad_arguments():
    with pytest.raises(ValueError, match="keep"):
        GradLogger(keep="mean")
    with pytest.raises(ValueError, match="leaf"):
        GradLogger(mode="post_accumulate").attach("h", torch.ones(2, requires_grad=True) * 2)
