"""m1.checkpointing: checkpointed gradients equal the plain net's (its mutants: test_mutants.py)."""

import pytest
import torch
from torch import nn

import kernels.autograd.checkpoint as ck
from harness import REGISTRY
from harness.testing import run_check

Task = REGISTRY.get("m1.checkpointing")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {
        "own_checkpoint: gradients",
        "torch_checkpoint: gradients",
        "RNG restore matters",
        "own_checkpoint: peak memory below plain",
    } <= set(rec.checks)
    assert rec.metrics["own_checkpoint.peak_alloc_delta_mb"] < rec.metrics["plain.peak_alloc_delta_mb"]


def test_first_segment_params_get_gradients_without_input_grad():
    # the data batch needs no grad: the anchor input still makes backward reach the segment
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    x = torch.randn(3, 4)
    ck.checkpoint(net, x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_checkpoint_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        ck.checkpoint(3, torch.ones(1))
