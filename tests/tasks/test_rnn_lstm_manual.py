"""5.02 lstm_manual: the hand-written LSTM equals nn.LSTM (its mutants: test_mutants.py)."""

import torch

from harness import REGISTRY
from harness.rnn_equivalence import exact_float32
from harness.testing import run_check

Task = REGISTRY.get("rnn.lstm_manual")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    for dt in ("float32", "float64"):  # one entry per check dtype
        assert {
            f"manual: outputs and final states ({dt})",
            f"manual: weight gradients ({dt})",
            f"manual: input and state gradients ({dt})",
        } <= set(rec.checks)
    assert rec.checks["manual: weight gradients (float32)"]["n"] > 100


def test_checks_on_cuda_turn_tf32_off_and_restore_it():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with exact_float32(torch.device("cuda")):  # flags only: no GPU needed
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
