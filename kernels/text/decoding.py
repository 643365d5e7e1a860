"""Decoding from an autoregressive model: greedy, beam search with a length penalty, sampling.

A model is seen through one function, ``step_fn(tokens, state) -> (scores, state)``:
``tokens`` int64 (N,) are the last token of each of N running hypotheses, ``scores``
(N, V) are logits or log-probabilities of the next token (``log_softmax`` is applied
here, a no-op on log-probabilities), ``state`` is any pytree of tensors (an RNN's
hidden state, a position counter). Beam search reorders the state rows when hypotheses
are pruned or copied, through ``reorder(state, index)``; the default indexes dim 0 of
every tensor, :func:`rnn_reorder` dim 1 (the batch dim of ``nn.LSTM``'s (L, N, H) states).

Conventions: every sequence starts from ``bos`` (not part of the output); a hypothesis
ends when it emits ``eos`` (counted in its length) or reaches ``max_len`` generated
tokens; outputs are padded with ``pad_id`` after the end.

Beam search (as in fairseq's ``SequenceGenerator``): per source, of the K x V
extensions of the K live hypotheses the best 2K by summed log-probability are taken;
those ending in ``eos`` *and ranked within the top K* are finished, the best K others
stay live. A source stops when it has K finished hypotheses, or when no live one can
still beat its ``n_best``-th best finished one (see :func:`beam_search`), or at
``max_len`` (live hypotheses are then finished as they are). Finished hypotheses are
ranked by log P(Y|X) / lp(Y) with the length penalty of Wu et al., "Google's Neural
Machine Translation System", 2016, eq. 14::

    lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha

alpha = 0 ranks by log-probability alone (favouring short outputs); Wu et al. use
alpha in [0.6, 1.0]. With K = 1 the search is exactly greedy decoding.

Shape legend: B sources, K beam width, V vocabulary, N = B*K rows, S max_len.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._pytree import tree_map

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]
Reorder = Callable[[Any, torch.Tensor], Any]


def reorder_state(state: Any, index: torch.Tensor, dim: int = 0) -> Any:
    """``state`` with every tensor's rows along ``dim`` taken at ``index`` (int64 (N',))."""
    return tree_map(lambda t: t.index_select(dim, index.to(t.device)) if isinstance(t, torch.Tensor) else t, state)


def rnn_reorder(state: Any, index: torch.Tensor) -> Any:
    """:func:`reorder_state` along dim 1, for ``nn.LSTM``/``nn.GRU`` states (L, N, H)."""
    return reorder_state(state, index, dim=1)


def length_penalty(length: int | torch.Tensor, alpha: float) -> Any:
    """lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al. 2016, eq. 14); |Y| counts ``eos``."""
    return ((5.0 + length) / 6.0) ** alpha


@dataclasses.dataclass
class Decoded:
    """Result of :func:`greedy` or :func:`beam_search`.

    Attributes:
        tokens: int64 (B, S) for greedy, (B, n_best, S) for beam search; ``pad_id`` after the end.
        lengths: int64 (B,) / (B, n_best): generated tokens, ``eos`` included.
        log_probs: float (B,) / (B, n_best): sum of the log-probabilities of those tokens.
        scores: float, like ``log_probs``: log_probs / lp(length) (greedy: alpha = 0, = log_probs).
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    log_probs: torch.Tensor
    scores: torch.Tensor

    def sequences(self) -> list:
        """Token lists without padding: [B][S] for greedy, [B][n_best][S] for beam search."""

        def cut(t, n):
            return t[: int(n)].tolist()

        if self.tokens.dim() == 2:
            return [cut(t, n) for t, n in zip(self.tokens, self.lengths)]
        return [[cut(t, n) for t, n in zip(ts, ns)] for ts, ns in zip(self.tokens, self.lengths)]


def _check(max_len: int, batch_size: int) -> None:
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1 generated token, got {max_len}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _start(bos: int | torch.Tensor, n: int, device: torch.device | str) -> torch.Tensor:
    return torch.as_tensor(bos, dtype=torch.int64, device=device).expand(n).clone()  # (n,)


@torch.no_grad()
def greedy(
    step_fn: StepFn,
    state: Any,
    *,
    batch_size: int,
    bos: int | torch.Tensor,
    eos: int,
    max_len: int,
    pad_id: int = 0,
    device: torch.device | str = "cpu",
) -> Decoded:
    """Pick the most probable next token until ``eos`` or ``max_len``, for B sources at once.

    ``state`` holds B rows. Ties go to the lowest token id (``argmax``). Returns
    :class:`Decoded` with tokens (B, S). Raises ValueError for max_len or batch_size < 1.
    """
    _check(max_len, batch_size)
    tokens = torch.full((batch_size, max_len), pad_id, dtype=torch.int64, device=device)
    lengths = torch.full((batch_size,), max_len, dtype=torch.int64, device=device)
    total = torch.zeros(batch_size, dtype=torch.float64, device=device)
    alive = torch.ones(batch_size, dtype=torch.bool, device=device)
    last = _start(bos, batch_size, device)
    for t in range(max_len):
        logp, state = step_fn(last, state)
        logp = F.log_softmax(logp.float(), dim=-1)  # (B, V)
        best, tok = logp.max(dim=-1)  # (B,), first index among ties
        total += torch.where(alive, best.double(), 0.0)
        tokens[:, t] = torch.where(alive, tok, pad_id)
        ended = alive & (tok == eos)
        lengths = torch.where(ended, t + 1, lengths)
        alive = alive & ~ended
        last = tok
        if not bool(alive.any()):
            break
    return Decoded(tokens, lengths, total, total.clone())


@torch.no_grad()
def beam_search(
    step_fn: StepFn,
    state: Any,
    *,
    batch_size: int,
    bos: int | torch.Tensor,
    eos: int,
    beam_width: int,
    max_len: int,
    alpha: float = 0.0,
    n_best: int = 1,
    pad_id: int = 0,
    reorder: Reorder = reorder_state,
    device: torch.device | str = "cpu",
) -> Decoded:
    """Beam search with the length penalty of Wu et al. (2016) for B sources at once.

    Args:
        state: the model state for the B sources (B rows along the reordered dim); it is
            copied to B*K rows here.
        beam_width: K >= 1; K = 1 is greedy decoding.
        alpha: length-penalty exponent >= 0 (0: no penalty).
        n_best: hypotheses returned per source, 1 <= n_best <= K.
    A source stops once it holds K finished hypotheses, or once no live hypothesis can
    beat its n_best-th best finished score: a live hypothesis with summed log-probability
    s <= 0 can end no better than s / lp(max_len) (its sum only falls, lp only grows).
    So when the beam never prunes (K at least the number of hypotheses), the result is
    the exact best sequence.
    Returns :class:`Decoded` with tokens (B, n_best, S), best first.
    Raises ValueError for K < 1, alpha < 0, n_best outside 1..K, max_len or batch_size < 1.
    """
    _check(max_len, batch_size)
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    if alpha < 0:
        raise ValueError(f"alpha (length-penalty exponent) must be >= 0, got {alpha}")
    if not 1 <= n_best <= beam_width:
        raise ValueError(f"n_best must be in 1..beam_width={beam_width}, got {n_best}")
    B, K = batch_size, beam_width
    rows = torch.arange(B, device=device).repeat_interleave(K)  # (N,) source of each row
    state = reorder(state, rows)
    scores = torch.full((B, K), -math.inf, dtype=torch.float64, device=device)
    scores[:, 0] = 0.0  # one live hypothesis per source at the start: no duplicates
    prefix = torch.empty(B, K, 0, dtype=torch.int64, device=device)  # (B, K, t)
    last = _start(bos, B * K, device)
    finished: list[list[tuple[float, float, list[int]]]] = [[] for _ in range(B)]  # (score, logp, tokens)
    done = [False] * B
    best_bound_lp = length_penalty(max_len, alpha)
    for t in range(1, max_len + 1):
        logp, state = step_fn(last, state)
        logp = F.log_softmax(logp.float(), dim=-1).double()  # (N, V)
        V = logp.shape[-1]
        cand = (scores[:, :, None] + logp.view(B, K, V)).view(B, K * V)  # (B, K*V)
        n_top = min(2 * K, K * V)
        top, idx = cand.topk(n_top, dim=-1)  # (B, 2K), best first
        beam, tok = idx // V, idx % V
        if t == max_len:  # every live hypothesis ends here, eos or not
            take = top[:, :K]
            for b in range(B):
                if done[b]:
                    continue
                for r in range(K):
                    s = float(take[b, r])
                    if s > -math.inf:
                        seq = prefix[b, beam[b, r]].tolist() + [int(tok[b, r])]
                        finished[b].append((s / length_penalty(t, alpha), s, seq))
            break
        is_eos = tok == eos
        # finish the eos candidates among the top K (fairseq's rule: keeps K = 1 greedy)
        hits = (is_eos[:, :K] & (top[:, :K] > -math.inf)).nonzero().tolist()
        for b, r in hits:
            if not done[b]:
                seq = prefix[b, beam[b, r]].tolist() + [eos]
                s = float(top[b, r])
                finished[b].append((s / length_penalty(t, alpha), s, seq))
        # the best K extensions that do not end go on
        live = top.masked_fill(is_eos, -math.inf)
        keep_s, keep_i = live.topk(K, dim=-1)  # (B, K) indexes into the 2K
        src_beam = beam.gather(1, keep_i)  # (B, K)
        new_tok = tok.gather(1, keep_i)  # (B, K)
        scores = keep_s
        prefix = torch.cat(
            [prefix.gather(1, src_beam[:, :, None].expand(-1, -1, prefix.shape[2])), new_tok[:, :, None]], dim=2
        )  # (B, K, t)
        state = reorder(state, (torch.arange(B, device=device)[:, None] * K + src_beam).reshape(-1))
        last = new_tok.reshape(-1)
        for b in range(B):
            if done[b]:
                continue
            fin = sorted(finished[b], key=lambda h: -h[0])
            best_live = float(scores[b].max())
            bound = best_live / best_bound_lp if best_live > -math.inf else -math.inf
            if len(fin) >= K or (len(fin) >= n_best and bound <= fin[n_best - 1][0]) or best_live == -math.inf:
                done[b] = True
        if all(done):
            break
    tokens = torch.full((B, n_best, max_len), pad_id, dtype=torch.int64)
    lengths = torch.zeros(B, n_best, dtype=torch.int64)
    out_lp = torch.full((B, n_best), -math.inf, dtype=torch.float64)
    out_sc = torch.full((B, n_best), -math.inf, dtype=torch.float64)
    for b in range(B):
        for r, (sc, lp_, seq) in enumerate(sorted(finished[b], key=lambda h: -h[0])[:n_best]):
            tokens[b, r, : len(seq)] = torch.tensor(seq)
            lengths[b, r], out_lp[b, r], out_sc[b, r] = len(seq), lp_, sc
    return Decoded(tokens.to(device), lengths.to(device), out_lp.to(device), out_sc.to(device))


@torch.no_grad()
def sample(
    step_fn: StepFn,
    state: Any,
    start: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator,
    temperature: float = 1.0,
    banned: Sequence[int] = (),
) -> torch.Tensor:
    """Draw ``steps`` tokens after ``start`` (int64 (B,)) from softmax(scores / temperature).

    Token ids in ``banned`` (padding, unknown) get probability 0. Draws use only
    ``generator`` (the global RNG is untouched), on the generator's device: the same
    generator seed gives the same tokens. Returns int64 (B, steps).
    Raises ValueError for temperature <= 0 or steps < 0.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    out = torch.empty(start.shape[0], steps, dtype=torch.int64, device=start.device)
    last = start
    for t in range(steps):
        logits, state = step_fn(last, state)
        logits = logits.float() / temperature  # (B, V)
        if banned:
            logits[:, list(banned)] = -math.inf
        probs = torch.softmax(logits, dim=-1).to(generator.device)
        last = torch.multinomial(probs, 1, generator=generator)[:, 0].to(start.device)  # (B,)
        out[:, t] = last
    return out
