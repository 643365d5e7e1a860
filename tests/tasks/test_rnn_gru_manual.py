"""5.07 gru_manual: the hand-written GRU equals nn.GRU; planted bugs are caught."""

import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from models.recurrent import GRU

Task = REGISTRY.get("rnn.gru_manual")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["manual: weight gradients (float64)"]["n"] > 50
    assert Task.manual_cls is GRU and Task.id == "rnn.gru_manual" and Task.seed == "5.07"


class ResetBeforeMatmul(GRU):
    """Cho et al.'s paper form n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), not torch's."""

    def cell(self, xw, state, w_hh, b_hh):
        (h,) = state
        H = h.shape[1]
        x_r, x_z, x_n = xw.chunk(3, dim=1)
        hw = F.linear(h, w_hh[: 2 * H], b_hh[: 2 * H])  # r and z rows only
        r = torch.sigmoid(x_r + hw[:, :H])
        z = torch.sigmoid(x_z + hw[:, H:])
        n = torch.tanh(x_n + F.linear(r * h, w_hh[2 * H :], b_hh[2 * H :]))
        return ((1 - z) * n + z * h,)


class SwappedResetUpdate(GRU):
    """Reads the gate rows as z, r, n instead of r, z, n."""

    def cell(self, xw, state, w_hh, b_hh):
        (h,) = state
        x_z, x_r, x_n = xw.chunk(3, dim=1)
        h_z, h_r, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return ((1 - z) * n + z * h,)


class NoRecurrentBias(GRU):
    def cell(self, xw, state, w_hh, b_hh):
        return super().cell(xw, state, w_hh, None)


def _with(cls):
    return type(f"Planted_{cls.__name__}", (Task,), {"manual_cls": cls, "__doc__": Task.__doc__})


def test_reset_gate_before_the_matmul_is_caught():
    expect_check_fails(_with(ResetBeforeMatmul), match="manual: outputs and final states")


def test_swapped_gates_are_caught():
    expect_check_fails(_with(SwappedResetUpdate), match="manual: outputs and final states")


def test_missing_bias_is_caught():
    expect_check_fails(_with(NoRecurrentBias), match="manual")
