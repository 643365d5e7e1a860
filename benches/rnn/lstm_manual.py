"""5.02 LSTM without nn.LSTM.

Compared: ``models.recurrent.LSTM``, a multi-layer LSTM written from its equations (gates
i, f, g, o; ``c' = f*c + i*g``, ``h' = o*tanh(c')``; PyTorch's ``nn.LSTM`` docs), against
``nn.LSTM`` (the baseline) holding the same weights (``load_state_dict`` both ways: the
parameter names and shapes are torch's). Each call is one forward and one backward of a
fixed random projection of every output, so what is compared and timed is a training
step's worth of work (``harness.rnn_equivalence``).

Check (tiny, float32 and float64, 3 seeded trials per case): output, h_n and c_n, and the
gradients of the input, of h_0/c_0 and of every weight and bias, over cases that cover
1-3 layers, ``batch_first`` both ways, zero and given initial states, and packed
variable-length batches (``pack_padded_sequence`` with ``enforce_sorted`` True and
False; h_n must be each sequence's state after its own last step, in the caller's batch
order). Bad input (wrong feature count, wrong h_0 shape) raises ValueError naming it.

Bench: fwd+bwd time of both across sequence lengths T (cpu: B=32, C=64, H=128, L=2).

Lesson: the hand-written stack hoists the input projection of all T steps into one matmul,
yet still runs ~6 small kernels per step and layer forward and about twice that backward,
each paying dispatch and autograd-graph bookkeeping (the graph grows with T, and backward
walks it node by node), while ``nn.LSTM`` runs ATen's fused cell loop and backward (cuDNN's
persistent kernels on a GPU: Appleyard et al., "Optimizing Performance of Recurrent Neural
Networks on GPUs", 2016). So the gap is overhead, and it widens with T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness import task
from harness.claims import speedup
from harness.mutants import Mutant
from harness.rnn_equivalence import RecurrentEquivalence
from models.recurrent import LSTM, RecurrentCase


# -- the wrong versions (mutants) ------------------------------------------------------------
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


@task("rnn.lstm_manual", seed="5.02", title="LSTM without nn.LSTM")
class LstmManual(RecurrentEquivalence):
    __doc__ = __doc__
    cell = "lstm"
    manual_cls = LSTM
    sizes = {
        "tiny": [
            RecurrentCase(7, 3, 5, 6, 1),
            RecurrentCase(6, 4, 5, 8, 3, batch_first=True, initial_state=True),
            RecurrentCase(9, 5, 4, 7, 2, packed="unsorted", initial_state=True),
            RecurrentCase(8, 3, 6, 5, 2, batch_first=True, packed="sorted"),
            RecurrentCase(5, 4, 3, 4, 3, batch_first=True, packed="unsorted"),
        ],
        "cpu": [RecurrentCase(t, 32, 64, 128, 2, batch_first=True) for t in (16, 64, 256)],
        "gpu": [RecurrentCase(t, 64, 256, 512, 2, batch_first=True) for t in (16, 64, 256, 1024)],
    }
    claims = (
        speedup("torch_module", over="manual", at_least=2.0,
                text="nn.LSTM >= 2x the hand-written LSTM (fwd+bwd) at the longest T"),
        speedup("torch_module", over="manual", at_least=1.0, config="T=16,",
                text="nn.LSTM at least as fast as the hand-written LSTM at T=16"),
    )  # fmt: skip
    mutants = (
        Mutant("swapped_gates", "gate rows read as f, i, g, o", {"manual_cls": SwappedInputForget},
               match="manual: outputs and final states"),
        Mutant("no_recurrent_bias", "bias_hh never reaches the gates", {"manual_cls": NoRecurrentBias}, match="manual"),
        Mutant("packed_states_sorted", "h_n/c_n of a packed batch left in sorted order",
               {"manual_cls": NoPermutationBack}, match="packed=unsorted"),
    )  # fmt: skip
