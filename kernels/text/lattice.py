"""Random and planted token lattices: decoders' test beds with a known best answer.

A *second-order lattice* is a table (B, S, V, V, V) of next-token logits given the source
row, the position and the last two tokens; :func:`lattice_step` turns it into a
``step_fn`` for ``kernels.text.decoding`` (state: source, position, previous token), and
:func:`brute_force` scores every sequence of up to S tokens to find the true optimum under
Wu et al.'s (2016) length penalty; :func:`planted_lattice` and :func:`length_penalty_lattice`
are one-source lattices built so that the answer is known by hand. Used by 5.10 ``rnn.beam_search``.
"""

from __future__ import annotations

import itertools
import math

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


def planted_lattice():
    """(step_fn, V=4, S=3) of one source where greedy misses the best sequence.

    Tokens 0 bos, 1 eos, 2 "a", 3 "b". Step 0: a 0.6, b 0.4; after a: eos 0.34, a and b 0.33;
    after b: eos 0.9; at step 2: eos 0.98. Greedy takes a then eos: 0.6 x 0.34 = 0.204; the
    optimum is b eos: 0.4 x 0.9 = 0.36, which a beam of width 2 finds.
    """
    e = 1e-9  # next to never: bos is never generated, nor eos first
    rows = {
        (0, 0): [e, e, 0.6, 0.4],
        (1, 2): [e, 0.34, 0.33, 0.33],
        (1, 3): [e, 0.9, 0.05, 0.05],
        (2, 2): [e, 0.98, 0.01, 0.01],
        (2, 3): [e, 0.98, 0.01, 0.01],
    }
    return table_step(rows, 4, 3), 4, 3


def length_penalty_lattice():
    """(step_fn, V=6, S=3) of one source whose winner depends on the length penalty's alpha.

    Tokens 0 bos, 1 eos, 2 "a", 3-5 others. "<eos>" first: log P = -2.0; "a a <eos>": log 0.5 +
    log 0.5 + log r = -2.5. At alpha 0 the short one wins; at alpha 1 the long one
    (-2.5 / (8/6) = -1.875 > -2.0 / (6/6)); every other sequence scores below both.
    """
    p_eos = math.exp(-2.0)
    x, r = (1 - p_eos - 0.5) / 4, math.exp(-2.5 - 2 * math.log(0.5))
    rows = {
        (0, 0): [x, p_eos, 0.5, x, x, x],
        (1, 2): [0.1, 0.1, 0.5, 0.1, 0.1, 0.1],
        (2, 2): [(1 - r) / 5, r] + [(1 - r) / 5] * 4,
    }
    return table_step(rows, 6, 3), 6, 3


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
