"""One recurrent network for the rnn tasks: (embedding or features) -> LSTM/GRU -> linear head.

The same module, by config, is a character or word language model (``head="per_step"``
over token ids), a sequence classifier (``head="last"``: IMDB sentiment), a tagger
(``per_step``, bidirectional: NER) and a forecaster (float features, ``last``: time
series). The recurrent stack is torch's ``nn.LSTM``/``nn.GRU`` (``impl="torch"``) or the
hand-written one of :mod:`models.recurrent` (``impl="manual"``): both take the same call.

Shapes: B batch, T time steps, V vocabulary, E embedding width / input features,
H hidden, O outputs. Inputs and outputs are batch-first.

Variable lengths: with ``lengths`` (B,) the batch is packed
(``pack_padded_sequence(enforce_sorted=False)``), so the recurrent stack never reads the
padding, ``head="last"`` takes each sequence's state after its own last token, and
per-step outputs past a sequence's length are zero.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.recurrent import RecurrentConfig, make_rnn

HEADS = ("per_step", "last")


@dataclasses.dataclass(frozen=True)
class SequenceModelConfig:
    """Shape and options of a :class:`SequenceModel`."""

    vocab_size: int | None
    """V: token ids in [0, V) are embedded; None means float inputs (B, T, input_size)"""
    input_size: int
    """E: embedding width (token inputs) or features per step (float inputs)"""
    hidden_size: int
    """H: recurrent state width (per direction)"""
    output_size: int
    """O: outputs per position (``per_step``) or per sequence (``last``): classes, tags, V, values"""
    num_layers: int = 1
    """stacked recurrent layers"""
    cell: str = "lstm"
    """"lstm" or "gru\""""
    impl: str = "torch"
    """"torch" (nn.LSTM/nn.GRU, fused kernels) or "manual" (models.recurrent, a Python loop over T)"""
    bidirectional: bool = False
    """run a backward-in-time stack too and concatenate (either impl)"""
    head: str = "per_step"
    """"per_step": (B, T, O) outputs; "last": (B, O) from each sequence's final state"""
    dropout: float = 0.0
    """dropout on the embedded inputs, between layers and before the head (training only)"""
    pad_id: int = 0
    """id of the padding token (its embedding row stays zero and gets no gradient)"""

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"SequenceModelConfig: head must be one of {HEADS}, got {self.head!r}")
        if self.vocab_size is not None and not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"SequenceModelConfig: pad_id {self.pad_id} outside the vocabulary of {self.vocab_size}")

    def n_params(self) -> int:
        return sum(p.numel() for p in SequenceModel(self).parameters())


PRESETS: dict[str, SequenceModelConfig] = {
    "tiny": SequenceModelConfig(vocab_size=64, input_size=16, hidden_size=32, output_size=64),
    # a character LM of the size Karpathy's char-rnn post trains on small corpora
    "char_small": SequenceModelConfig(vocab_size=100, input_size=64, hidden_size=256, output_size=100, num_layers=2),
}


class SequenceModel(nn.Module):
    """Embedding (or float features) -> recurrent stack -> dropout -> linear head."""

    def __init__(self, config: SequenceModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = (
            nn.Embedding(c.vocab_size, c.input_size, padding_idx=c.pad_id) if c.vocab_size is not None else None
        )
        rc = RecurrentConfig(
            c.input_size, c.hidden_size, c.num_layers, batch_first=True, dropout=c.dropout if c.num_layers > 1 else 0.0
        )
        self.rnn = make_rnn(c.cell, rc, c.impl, bidirectional=c.bidirectional)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_size * (2 if c.bidirectional else 1), c.output_size)

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.vocab_size is not None:
            if x.dtype != torch.int64 or x.dim() != 2:
                raise ValueError(f"SequenceModel: token input must be int64 (B, T), got {x.dtype} {tuple(x.shape)}")
            return self.drop(self.embed(x))  # (B, T, E)
        if x.dim() != 3 or x.shape[-1] != c.input_size:
            raise ValueError(f"SequenceModel: float input must be (B, T, {c.input_size}), got {tuple(x.shape)}")
        return x

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, hx: Any = None, return_state: bool = False):
        """Outputs for ``x``: int64 ids (B, T) or floats (B, T, E).

        Args:
            lengths: (B,) valid steps per sequence (on any device); None = all T valid.
            hx: initial recurrent state (as nn.LSTM/nn.GRU take it), None for zeros.
            return_state: also return the final recurrent state (for generation).
        Returns (B, T, O) for ``per_step`` or (B, O) for ``last``; with ``return_state``
        a pair (outputs, state).
        """
        emb = self._inputs(x)
        total = emb.shape[1]
        if lengths is not None:
            packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed, hx)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=total)  # (B, T, H*dirs)
        else:
            out, state = self.rnn(emb, hx)  # (B, T, H*dirs)
        if self.config.head == "per_step":
            y = self.head(self.drop(out))  # (B, T, O)
        else:
            h_n = state[0] if isinstance(state, tuple) else state  # (L*dirs, B, H)
            last = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.config.bidirectional else h_n[-1]  # (B, H*dirs)
            y = self.head(self.drop(last))  # (B, O)
        return (y, state) if return_state else y

    def step(self, tokens: torch.Tensor, hx: Any = None) -> tuple[torch.Tensor, Any]:
        """One generation step: ids (B,) and state -> (logits (B, O), new state)."""
        y, state = self.forward(tokens[:, None], hx=hx, return_state=True)  # (B, 1, O)
        return y[:, 0], state
