"""m5.activation_checkpointing: every policy's gradients equal no checkpointing, memory drops
(its mutants: test_mutants.py); worked examples of what each policy keeps."""

import math

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from kernels.autograd.block_checkpoint import held_and_peak_bytes, lm_loss
from kernels.checkpointing.activation import model_and_ids
from kernels.layers.masks import loglog_slope

Task = REGISTRY.get("m5.activation_checkpointing")
module = __import__(Task.__module__, fromlist=["ActCkptConfig"])  # the config, as the task module exports it
CPU = torch.device("cpu")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["gradients = no checkpointing (bit-identical on CPU)"]["max_abs_err"] == 0.0
    for name in ("activation memory kept for backward drops", "peak memory drops with per-block checkpointing"):
        assert name in rec.checks


def _held(n: int, policy: str) -> int:
    cfg = module.ActCkptConfig(n, 32, 2, 16, 2)
    model, ids = model_and_ids(cfg, CPU, torch.float32, 0)
    return held_and_peak_bytes(lambda: lm_loss(model, ids, policy), list(model.parameters()), CPU)[0]


def test_per_block_keeps_one_block_input_and_one_rng_state_per_block():
    # B=2, T=16, E=32 float32: each extra checkpointed block keeps its input (B T E x 4 bytes)
    # and the CPU generator state that checkpoint saves to replay dropout (5056 bytes)
    rng_state = torch.get_rng_state().numel()
    assert _held(3, "per_block") - _held(2, "per_block") == 2 * 16 * 32 * 4 + rng_state


def test_no_checkpointing_keeps_far_more_per_block():
    per_block_growth = _held(3, "per_block") - _held(2, "per_block")
    none_growth = _held(3, "none") - _held(2, "none")
    assert none_growth > 8 * per_block_growth  # a block's internals dwarf its input


def test_exponent_of_a_power_law():
    ns = [4, 9, 16, 25]
    assert loglog_slope(ns, [3 * math.sqrt(n) for n in ns]) == pytest.approx(0.5)


def test_unknown_policy_is_refused():
    cfg = module.ActCkptConfig(1, 32, 2, 8, 1)
    model, ids = model_and_ids(cfg, CPU, torch.float32, 0)
    with pytest.raises(ValueError, match="unknown checkpoint policy"):
        lm_loss(model, ids, "everything")
