"""5.02 lstm_manual: the hand-written LSTM equals nn.LSTM; planted bugs are caught."""

import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from models.recurrent import LSTM

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


class SwappedInputForget(LSTM):
    """Reads the gate rows as f, i, g, o instead of torch's i, f, g, o."""

    def cell(self, xw, state, w_hh, b_hh):
        h, c = state
        f, i, g, o = (xw + F.linear(h, w_hh, b_hh)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class NoRecurrentBias(LSTM):
    """Forgets bias_hh: only bias_ih reaches the gates."""

    def cell(self, xw, state, w_hh, b_hh):
        return super().cell(xw, state, w_hh, None)


class NoPermutationBack(LSTM):
    """Returns h_n/c_n of a packed batch in sorted order, not in the caller's order."""

    def forward(self, input, hx=None):
        out, (h, c) = super().forward(input, hx)
        if isinstance(input, torch.nn.utils.rnn.PackedSequence) and input.sorted_indices is not None:
            h, c = h.index_select(1, input.sorted_indices), c.index_select(1, input.sorted_indices)
        return out, (h, c)


def _with(cls):
    return type(f"Planted_{cls.__name__}", (Task,), {"manual_cls": cls, "__doc__": Task.__doc__})


def test_swapped_gates_are_caught():
    expect_check_fails(_with(SwappedInputForget), match="manual: outputs and final states")


def test_missing_bias_is_caught():
    # outputs go wrong, and bias_hh's gradient is all zeros (the constant-output guard)
    expect_check_fails(_with(NoRecurrentBias), match="manual")


def test_packed_states_in_sorted_order_are_caught():
    err = expect_check_fails(_with(NoPermutationBack), match="manual: outputs and final states")
    assert "packed=unsorted" in str(err)


def test_checks_on_cuda_turn_tf32_off_and_restore_it():
    exact = __import__(Task.__module__, fromlist=["exact_float32"]).exact_float32
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with exact(torch.device("cuda")):  # flags only: no GPU needed
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
