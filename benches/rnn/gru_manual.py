"""5.07 GRU without nn.GRU.

Compared: ``models.recurrent.GRU``, a multi-layer GRU written from its equations, against
``nn.GRU`` (the baseline) holding the same weights. The equations are those of PyTorch's
``nn.GRU`` docs::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))  h' = (1 - z) * n + z * h

r gates ``W_hn h + b_hn`` *after* the matmul (cuDNN's variant), where Cho et al. (2014)
write ``W_hn (r * h)``: the two differ whenever b_hn != 0 or r varies over the hidden
units, and only the former lets one (B, H) @ (H, 3H) matmul serve all three gates.

Check and bench as in 5.02 (``rnn.lstm_manual``, whose task class this one extends):
output, h_n and every gradient (input, h_0, each weight and bias) equal nn.GRU's over
1-3 layers, ``batch_first`` both ways, zero and given h_0, and packed batches with
``enforce_sorted`` True and False, in float32 and float64, 3 seeded trials each. The
reset gate applied before the matmul, swapped r/z gates and a missing bias are caught
(tests/tasks/test_rnn_gru_manual.py). Bench: fwd+bwd time of both across T.

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, float32,
``drills bench --task rnn.gru_manual --no-save``; fwd+bwd of B=32, C=64, H=128, L=2):
T=16: nn.GRU 39 ms, hand-written 49 ms (1.3x slower); T=64: 154 vs 227 ms (1.5x);
T=256: 591 vs 2,658 ms (4.5x). With 3 gates instead of 4 a GRU step does 3/4 of an LSTM
step's matmul work, yet at this size the two torch modules take about the same time
(per-step overhead, not FLOPs); the hand-written loop's overhead is what grows with T,
as for the LSTM.
"""

from __future__ import annotations

import importlib

from harness import task
from models.recurrent import GRU, RecurrentCase

# the equivalence machinery (inputs, impls, check) is 5.02's; only the cell differs
LstmManual = importlib.import_module("drills_tasks.rnn.lstm_manual").LstmManual


@task("rnn.gru_manual", seed="5.07", title="GRU without nn.GRU")
class GruManual(LstmManual):
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
