"""Random and planted token lattices: decoders' test beds with a known best answer.

A *second-order lattice* is a table (B, S, V, V, V) of next-token logits given the source
row, the position and the last two tokens; :func:`lattice_step` turns it into a
``step_fn`` for ``kernels.text.decoding`` (state: source, position, previous token), and
:func:`brute_force` scores every sequence of up to S tokens to find the true optimum under
Wu et al.'s (2016) length penalty. Used by 5.10 ``rnn.beam_search``.
"""

from __future__ import annotations

import itertools

import torch

#: token 0 is bos (never generated, it only starts), 1 is eos
EOS = 1


def lattice_step(table: torch.Tensor):
    """step_fn for a lattice ``table`` (B, S, V, V, V). State: (source, position, prev2)."""
    S = table.shape[1]

    def step(tokens, state):
        src, pos, prev2 = state
        logits = table[src, pos.clamp(max=S - 1), prev2, tokens]  # (N, V)
        return logits, (src, pos + 1, tokens)

    return step


def lattice_state(batch: int) -> tuple:
    """The initial state of ``batch`` sources: (source ids, positions 0, previous token 0)."""
    zeros = torch.zeros(batch, dtype=torch.int64)
    return torch.arange(batch), zeros, zeros.clone()


def table_step(rows: dict[tuple[int, int], list[float]], vocab: int, max_len: int):
    """A one-source lattice from {(position, last token): probabilities} (other rows uniform)."""
    table = torch.zeros(1, max_len, vocab, vocab, vocab)
    for (pos, tok), probs in rows.items():
        table[0, pos, :, tok] = torch.tensor(probs).log()
    return lattice_step(table)


def brute_force(step, state0, *, batch: int, vocab: int, max_len: int, alpha: float, eos: int = EOS):
    """Best (score, log P, tokens) per source over every sequence of up to ``max_len`` tokens.

    Scores all V^S token strings at once; a string ends at its first eos (later tokens are
    ignored: duplicates do not matter for the maximum) or at max_len; score = log P /
    ((5 + |Y|) / 6)^alpha.
    """
    seqs = torch.tensor(list(itertools.product(range(vocab), repeat=max_len)))  # (M, S)
    M = seqs.shape[0]
    best = []
    for b in range(batch):
        state = tuple(torch.full((M,), int(s[b]), dtype=torch.int64) for s in state0)
        last = torch.zeros(M, dtype=torch.int64)
        total = torch.zeros(M, dtype=torch.float64)
        alive = torch.ones(M, dtype=torch.bool)
        length = torch.full((M,), max_len)
        for t in range(max_len):
            logits, state = step(last, state)
            logp = torch.log_softmax(logits.float(), -1).double().gather(1, seqs[:, t : t + 1])[:, 0]
            total += torch.where(alive, logp, 0.0)
            ended = alive & (seqs[:, t] == eos)
            length = torch.where(ended, t + 1, length)
            alive &= ~ended
            last = seqs[:, t]
        score = total / ((5.0 + length.double()) / 6.0) ** alpha
        i = int(score.argmax())
        best.append((float(score[i]), float(total[i]), seqs[i, : int(length[i])].tolist()))
    return best
