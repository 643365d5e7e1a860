"""5.07 GRU without nn.GRU.

Compared: ``models.recurrent.GRU``, a multi-layer GRU written from its equations, against
``nn.GRU`` (the baseline) holding the same weights. The equations are those of PyTorch's
``nn.GRU`` docs::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))  h' = (1 - z) * n + z * h

r gates ``W_hn h + b_hn`` *after* the matmul (cuDNN's variant), where Cho et al. (2014)
write ``W_hn (r * h)``: the two differ whenever b_hn != 0 or r varies over the hidden
units, and only the former lets one (B, H) @ (H, 3H) matmul serve all three gates.

Check and bench as in 5.02 (``rnn.lstm_manual``; both use ``harness.rnn_equivalence``):
output, h_n and every gradient (input, h_0, each weight and bias) equal nn.GRU's over
1-3 layers, ``batch_first`` both ways, zero and given h_0, and packed batches with
``enforce_sorted`` True and False, in float32 and float64, 3 seeded trials each. Bench:
fwd+bwd time of both across T.

Lesson: with 3 gates instead of 4 a GRU step does 3/4 of an LSTM step's matmul work
(Chung et al. 2014), yet at small widths the two torch modules take about the same time:
per-step overhead, not FLOPs, sets the pace, and the hand-written loop's overhead is what
grows with T, as for the LSTM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness import task
from harness.claims import speedup
from harness.mutants import Mutant
from harness.rnn_equivalence import RecurrentEquivalence
from models.recurrent import GRU, RecurrentCase


# -- the wrong versions (mutants) ------------------------------------------------------------
class ResetBeforeMatmul(GRU):
    """Cho et al.'s paper form n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), not torch's."""

    def cell(self, xw, state, w_hh, b_hh):
        (h,) = state
        H = h.shape[1]
        x_r, x_z, x_n = xw.chunk(3, dim=1)
        hw = F.linear(h, w_hh[: 2 * H], b_hh[: 2 * H])  # r and z rows only
        r, z = torch.sigmoid(x_r + hw[:, :H]), torch.sigmoid(x_z + hw[:, H:])
        n = torch.tanh(x_n + F.linear(r * h, w_hh[2 * H :], b_hh[2 * H :]))
        return ((1 - z) * n + z * h,)


class SwappedResetUpdate(GRU):
    """Reads the gate rows as z, r, n instead of r, z, n."""

    def cell(self, xw, state, w_hh, b_hh):
        (h,) = state
        x_z, x_r, x_n = xw.chunk(3, dim=1)
        h_z, h_r, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        return ((1 - z) * torch.tanh(x_n + r * h_n) + z * h,)


class NoRecurrentBias(GRU):
    """Forgets bias_hh."""

    def cell(self, xw, state, w_hh, b_hh):
        return super().cell(xw, state, w_hh, None)


@task("rnn.gru_manual", seed="5.07", title="GRU without nn.GRU")
class GruManual(RecurrentEquivalence):
    __doc__ = __doc__
    cell = "gru"
    manual_cls = GRU
    sizes = {
        "tiny": [
            RecurrentCase(7, 3, 5, 6, 1),
            RecurrentCase(6, 4, 5, 8, 3, batch_first=True, initial_state=True),
            RecurrentCase(9, 5, 4, 7, 2, packed="unsorted", initial_state=True),
            RecurrentCase(8, 3, 6, 5, 2, batch_first=True, packed="sorted"),
        ],
        "cpu": [RecurrentCase(t, 32, 64, 128, 2, batch_first=True) for t in (16, 64, 256)],
        "gpu": [RecurrentCase(t, 64, 256, 512, 2, batch_first=True) for t in (16, 64, 256, 1024)],
    }
    claims = (
        speedup("torch_module", over="manual", at_least=2.0,
                text="nn.GRU >= 2x the hand-written GRU (fwd+bwd) at the longest T"),
        speedup("torch_module", over="manual", at_least=1.0, config="T=16,",
                text="nn.GRU at least as fast as the hand-written GRU at T=16"),
    )  # fmt: skip
    mutants = (
        Mutant("reset_before_matmul", "Cho et al.'s W_hn (r * h) instead of torch's r * (W_hn h + b_hn)",
               {"manual_cls": ResetBeforeMatmul}, match="manual: outputs and final states"),
        Mutant("swapped_gates", "gate rows read as z, r, n", {"manual_cls": SwappedResetUpdate},
               match="manual: outputs and final states"),
        Mutant("no_recurrent_bias", "bias_hh never reaches the gates", {"manual_cls": NoRecurrentBias}, match="manual"),
    )  # fmt: skip
