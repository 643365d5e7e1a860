"""m1.checkpointing: checkpointed gradients equal the plain net's; planted checkpoint bugs are caught."""

import pytest
import torch
from torch import nn

import kernels.autograd.checkpoint as ck
from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

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


def _detaching_sequential(layers, segments, x, preserve_rng_state=True):
    """Detaches each segment's input: no gradient reaches the layers before it."""
    layers = list(layers)
    if not 1 <= segments <= len(layers):
        raise ValueError("segments out of range")
    size = -(-len(layers) // segments)
    for s in range(0, len(layers), size):
        chunk = nn.Sequential(*layers[s : s + size])
        x = ck.checkpoint(chunk, x.detach(), preserve_rng_state=preserve_rng_state)
    return x


def _no_rng_restore(layers, segments, x, preserve_rng_state=True):
    """Ignores preserve_rng_state: the recomputation draws fresh dropout masks."""
    return ck.checkpoint_sequential(layers, segments, x, preserve_rng_state=False)


def _keeps_everything(layers, segments, x, preserve_rng_state=True):
    """Right gradients, but no checkpointing at all: the memory check must notice."""
    if not 1 <= segments <= len(list(layers)):
        raise ValueError("segments out of range")
    return nn.Sequential(*layers)(x)


def test_detached_segment_input_is_caught():
    class Wrong(Task):
        checkpoint_sequential = staticmethod(_detaching_sequential)

    expect_check_fails(Wrong, match="got no gradient")


def test_missing_rng_restore_is_caught():
    class Wrong(Task):
        checkpoint_sequential = staticmethod(_no_rng_restore)

    expect_check_fails(Wrong, match="own_checkpoint: gradients")


def test_no_memory_saving_is_caught():
    class Wrong(Task):
        checkpoint_sequential = staticmethod(_keeps_everything)

    expect_check_fails(Wrong, match="is not below 60% of plain")


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
