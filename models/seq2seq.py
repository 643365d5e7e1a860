"""RNN encoder-decoder for translation, without or with attention (Bahdanau additive, Luong multiplicative).

Encoder: embedding -> GRU/LSTM over the source (packed by length, so padding is never
read); its outputs are the attention keys/values, its final state the decoder's initial
state. Decoder, one step per target token (teacher forcing in training):

* ``attention="none"`` (Sutskever et al. 2014; Cho et al. 2014): h_t = RNN(emb(y_{t-1}), h_{t-1});
  logits = W_out h_t. The whole source must pass through the fixed-size state.
* ``"luong"`` (Luong, Pham & Manning 2015, global attention, "general" score, no input
  feeding): h_t = RNN(emb(y_{t-1}), h_{t-1}); a_t = softmax_i(h_t^T W_a e_i);
  c_t = sum_i a_ti e_i; o_t = tanh(W_c [c_t; h_t]); logits = W_out o_t.
* ``"bahdanau"`` (Bahdanau, Cho & Bengio 2015, additive score): a_t = softmax_i(v^T tanh(W_q
  h_{t-1} + W_k e_i)); c_t = sum_i a_ti e_i; h_t = RNN([emb(y_{t-1}); c_t], h_{t-1});
  o_t = tanh(W_c [c_t; h_t]); logits = W_out o_t.

Masking: positions past a source's length get score -inf before the softmax, so their
weight is exactly 0 (exp(-inf) = 0) and every row of weights sums to 1 over the real
positions. A source of length 0 is rejected (its row would be all -inf: NaN).

The loss :func:`masked_cross_entropy` averages over real target tokens only, from the
lengths (not from the target ids), so whatever sits in padded positions, logits or
targets, cannot change it.

Shapes: B batch, S source steps, T target steps, E embedding, H hidden, A attention
width, V vocabulary.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.recurrent import RecurrentConfig, make_rnn

ATTENTIONS = ("none", "bahdanau", "luong")


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015) score: e_i = v^T tanh(W_q q + W_k k_i); weights = masked softmax.

    ``forward(query (B, Dq), keys (B, S, Dk), mask (B, S) bool, True = real)`` ->
    (context (B, Dk), weights (B, S)). ``keys_proj`` (B, S, A) may be passed precomputed
    (:meth:`project_keys`), since W_k k_i is the same at every decoder step.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.w_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.w_k = nn.Linear(key_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.w_k(keys)  # (B, S, A)

    def forward(self, query, keys, mask, keys_proj=None):
        kp = self.project_keys(keys) if keys_proj is None else keys_proj  # (B, S, A)
        scores = self.v(torch.tanh(kp + self.w_q(query)[:, None, :]))[..., 0]  # (B, S)
        return _attend(scores, keys, mask)


class MultiplicativeAttention(nn.Module):
    """Luong et al. (2015) score: "general" e_i = q^T W_a k_i, or "dot" e_i = q^T k_i.

    Same call as :class:`AdditiveAttention`; ``keys_proj`` (B, S, Dq) = keys W_a^T.
    """

    def __init__(self, query_dim: int, key_dim: int, score: str = "general"):
        super().__init__()
        if score not in ("general", "dot"):
            raise ValueError(f"MultiplicativeAttention: score must be 'general' or 'dot', got {score!r}")
        if score == "dot" and query_dim != key_dim:
            raise ValueError(f"dot score needs query_dim == key_dim, got {query_dim} and {key_dim}")
        self.w_a = nn.Linear(key_dim, query_dim, bias=False) if score == "general" else None

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.w_a(keys) if self.w_a is not None else keys  # (B, S, Dq)

    def forward(self, query, keys, mask, keys_proj=None):
        kp = self.project_keys(keys) if keys_proj is None else keys_proj  # (B, S, Dq)
        scores = torch.bmm(kp, query[:, :, None])[..., 0]  # (B, S)
        return _attend(scores, keys, mask)


def _attend(scores: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (B, S), exactly 0 where masked
    return torch.bmm(weights[:, None, :], values)[:, 0], weights  # (B, Dk), (B, S)


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig:
    """Shape and options of a :class:`Seq2Seq`."""

    src_vocab: int
    """source vocabulary size (ids 0..src_vocab-1; 0 is padding)"""
    tgt_vocab: int
    """target vocabulary size, including the bos and eos ids"""
    emb: int = 32
    """E: embedding width of both sides"""
    hidden: int = 64
    """H: encoder and decoder state width"""
    num_layers: int = 1
    """stacked recurrent layers on each side"""
    cell: str = "gru"
    """"gru" or "lstm\""""
    attention: str = "none"
    """"none", "bahdanau" (additive) or "luong" (multiplicative, general score)"""
    attn_dim: int = 64
    """A: width of the additive score's hidden layer (bahdanau only)"""
    impl: str = "torch"
    """recurrent stacks: "torch" (nn.GRU/nn.LSTM) or "manual" (models.recurrent)"""
    pad_id: int = 0
    """padding id on both sides"""

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"Seq2SeqConfig: attention must be one of {ATTENTIONS}, got {self.attention!r}")


PRESETS = {
    "tiny": Seq2SeqConfig(src_vocab=40, tgt_vocab=40, emb=32, hidden=64),
    # Luong et al. 2015 used 4-layer 1000-unit LSTMs; this is the laptop-sized cousin
    "small": Seq2SeqConfig(
        src_vocab=8000, tgt_vocab=8000, emb=256, hidden=512, num_layers=2, cell="lstm", attention="luong"
    ),
}


class Seq2Seq(nn.Module):
    """Encoder-decoder; see the module docstring for the equations."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        c = self.config = config
        self.src_embed = nn.Embedding(c.src_vocab, c.emb, padding_idx=c.pad_id)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.emb, padding_idx=c.pad_id)
        self.encoder = make_rnn(c.cell, RecurrentConfig(c.emb, c.hidden, c.num_layers, batch_first=True), c.impl)
        dec_in = c.emb + (c.hidden if c.attention == "bahdanau" else 0)
        self.decoder = make_rnn(c.cell, RecurrentConfig(dec_in, c.hidden, c.num_layers, batch_first=True), c.impl)
        if c.attention == "bahdanau":
            self.attn = AdditiveAttention(c.hidden, c.hidden, c.attn_dim)
        elif c.attention == "luong":
            self.attn = MultiplicativeAttention(c.hidden, c.hidden, "general")
        else:
            self.attn = None
        self.combine = nn.Linear(2 * c.hidden, c.hidden) if self.attn is not None else None
        self.out = nn.Linear(c.hidden, c.tgt_vocab)

    # -- encoder ------------------------------------------------------------------------------
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any, Any]:
        """src int64 (B, S), src_len (B,) -> (enc_out (B, S, H), mask (B, S) bool, keys_proj, state).

        Raises ValueError when a source has length 0 or more than S.
        """
        lengths = src_len.cpu()
        if bool((lengths < 1).any()) or bool((lengths > src.shape[1]).any()):
            raise ValueError(f"Seq2Seq.encode: source lengths must be in 1..{src.shape[1]}, got {lengths.tolist()}")
        packed = pack_padded_sequence(self.src_embed(src), lengths, batch_first=True, enforce_sorted=False)
        out, state = self.encoder(packed)
        enc, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, H)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_len.to(src.device)[:, None]  # (B, S)
        keys_proj = self.attn.project_keys(enc) if self.attn is not None else None
        return enc, mask, keys_proj, state

    # -- decoder ------------------------------------------------------------------------------
    def _top(self, state: Any) -> torch.Tensor:
        return (state[0] if isinstance(state, tuple) else state)[-1]  # (B, H) top layer's h

    def decode_step(
        self, y_prev: torch.Tensor, state: Any, enc: torch.Tensor, mask: torch.Tensor, keys_proj: Any = None
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        """One decoder step: y_prev (B,) -> (logits (B, V), new state, attention weights (B, S) or None)."""
        e = self.tgt_embed(y_prev)  # (B, E)
        weights = None
        if self.config.attention == "bahdanau":
            ctx, weights = self.attn(self._top(state), enc, mask, keys_proj)  # query = h_{t-1}
            e = torch.cat([e, ctx], dim=-1)  # (B, E + H)
        h, state = self.decoder(e[:, None, :], state)  # (B, 1, H)
        h = h[:, 0]
        if self.config.attention == "luong":
            ctx, weights = self.attn(h, enc, mask, keys_proj)  # query = h_t
        if self.attn is not None:
            h = torch.tanh(self.combine(torch.cat([ctx, h], dim=-1)))  # (B, H)
        return self.out(h), state, weights

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for decoder inputs tgt_in (B, T) (bos + target)."""
        enc, mask, kp, state = self.encode(src, src_len)
        logits = []
        for t in range(tgt_in.shape[1]):
            lg, state, _ = self.decode_step(tgt_in[:, t], state, enc, mask, kp)
            logits.append(lg)
        return torch.stack(logits, dim=1)  # (B, T, V)

    def decoding_fns(self, src: torch.Tensor, src_len: torch.Tensor):
        """(step_fn, state, reorder) for ``kernels.text.decoding``'s greedy/beam_search/sample."""
        enc, mask, kp, state = self.encode(src, src_len)

        def step(tokens, st):
            h, e, m, k = st
            logits, h, _ = self.decode_step(tokens, h, e, m, k)
            return logits, (h, e, m, k)

        def reorder(st, index):
            h, e, m, k = st
            sel = lambda t, d: t.index_select(d, index.to(t.device))  # noqa: E731
            h = tuple(sel(x, 1) for x in h) if isinstance(h, tuple) else sel(h, 1)  # (L, N, H)
            return h, sel(e, 0), sel(m, 0), None if k is None else sel(k, 0)

        return step, (state, enc, mask, kp), reorder


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the first ``lengths[b]`` positions of each row.

    logits (B, T, V), targets int64 (B, T), lengths (B,). The mask comes from the lengths
    alone, so padded positions (any logits, any target ids, even out-of-range ones) do
    not change the loss or its gradient. Raises ValueError if no position is real.
    """
    B, T, V = logits.shape
    mask = torch.arange(T, device=logits.device)[None, :] < lengths.to(logits.device)[:, None]  # (B, T)
    n = mask.sum()
    if int(n) == 0:
        raise ValueError("masked_cross_entropy: every length is 0; nothing to average")
    safe_targets = torch.where(mask, targets, 0)  # padded ids may be anything, even out of range
    nll = F.cross_entropy(logits.reshape(B * T, V), safe_targets.reshape(-1), reduction="none").view(B, T)
    return torch.where(mask, nll, 0.0).sum() / n  # where, not *: a NaN in padding stays out
