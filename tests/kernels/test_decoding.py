"""kernels.text.decoding: greedy, beam search (exact when unpruned, Wu et al. penalty), sampling."""

import itertools
import math

import pytest
import torch

from kernels.text.decoding import beam_search, greedy, length_penalty, reorder_state, rnn_reorder, sample

EOS = 1


def first_order(table):
    """step_fn of a lattice table (B, S, V, V): logits given position and last token."""
    S = table.shape[1]

    def step(tokens, state):
        src, pos = state
        return table[src, pos.clamp(max=S - 1), tokens], (src, pos + 1)

    return step


def start(b):
    return torch.arange(b), torch.zeros(b, dtype=torch.int64)


def exhaustive(table, b, alpha):
    """Best (score, tokens) of source b by enumerating every sequence, one at a time."""
    S, V = table.shape[1], table.shape[-1]
    lsm = torch.log_softmax(table[b].double(), -1)
    best = (-math.inf, None)
    for n in range(1, S + 1):
        for seq in itertools.product(range(V), repeat=n):
            if EOS in seq[:-1] or (n < S and seq[-1] != EOS):
                continue
            prev, lp = 0, 0.0
            for t, tok in enumerate(seq):
                lp += float(lsm[t, prev, tok])
                prev = tok
            sc = lp / ((5 + n) / 6) ** alpha
            if sc > best[0]:
                best = (sc, list(seq))
    return best


def test_length_penalty_values():
    assert length_penalty(1, 0.6) == 1.0  # (5 + 1) / 6 = 1
    assert length_penalty(7, 1.0) == 2.0
    assert math.isclose(length_penalty(10, 0.6), (15 / 6) ** 0.6)
    torch.testing.assert_close(length_penalty(torch.tensor([1.0, 7.0]), 1.0), torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_unpruned_beam_is_exact(seed, alpha):
    B, S, V = 2, 4, 4
    table = 1.5 * torch.randn(B, S, V, V, generator=torch.Generator().manual_seed(seed))
    table[..., EOS] -= 1.0
    got = beam_search(
        first_order(table), start(B), batch_size=B, bos=0, eos=EOS, beam_width=V**S, max_len=S, alpha=alpha, n_best=3
    )
    for b in range(B):
        score, seq = exhaustive(table, b, alpha)
        assert got.sequences()[b][0] == seq
        assert math.isclose(float(got.scores[b, 0]), score, rel_tol=1e-6)  # float32 log_softmax
        assert bool((got.scores[b, :-1] >= got.scores[b, 1:]).all())  # best first


def test_beam1_equals_greedy_and_padding_after_the_end():
    B, S, V = 8, 6, 5
    table = 2 * torch.randn(B, S, V, V, generator=torch.Generator().manual_seed(0))
    g = greedy(first_order(table), start(B), batch_size=B, bos=0, eos=EOS, max_len=S, pad_id=-1)
    for alpha in (0.0, 1.0):
        b1 = beam_search(
            first_order(table), start(B), batch_size=B, bos=0, eos=EOS, beam_width=1, max_len=S, alpha=alpha, pad_id=-1
        )
        assert torch.equal(b1.tokens[:, 0], g.tokens) and torch.equal(b1.lengths[:, 0], g.lengths)
        torch.testing.assert_close(b1.log_probs[:, 0], g.log_probs)
    ended = g.lengths < S
    assert ended.any(), "the seeded lattice should end some sequences early"
    for row, n in zip(g.tokens, g.lengths.tolist()):
        assert (row[n:] == -1).all() and (n == S or row[n - 1] == EOS)


def test_greedy_log_probs_are_the_sum_of_chosen_token_log_probs():
    B, S, V = 3, 5, 4
    table = torch.randn(B, S, V, V, generator=torch.Generator().manual_seed(1))
    g = greedy(first_order(table), start(B), batch_size=B, bos=0, eos=EOS, max_len=S)
    for b, seq in enumerate(g.sequences()):
        prev, total = 0, 0.0
        for t, tok in enumerate(seq):
            row = torch.log_softmax(table[b, t, prev].double(), -1)
            assert tok == int(row.argmax())
            total += float(row[tok])
            prev = tok
        assert math.isclose(float(g.log_probs[b]), total, rel_tol=1e-6)


def test_reorder_helpers():
    state = (torch.arange(6).view(2, 3), torch.arange(4).view(1, 4, 1))
    out = rnn_reorder(state, torch.tensor([2, 0]))
    assert out[0].tolist() == [[2, 0], [5, 3]] and out[1][0, :, 0].tolist() == [2, 0]
    assert reorder_state({"h": torch.tensor([5, 6, 7])}, torch.tensor([1, 1]))["h"].tolist() == [6, 6]


def test_sampling_is_seeded_and_respects_banned_ids():
    table = torch.randn(2, 50, 6, 6, generator=torch.Generator().manual_seed(0))
    draw = lambda seed, **kw: sample(
        first_order(table),
        start(2),
        torch.zeros(2, dtype=torch.int64),
        40,  # noqa: E731
        generator=torch.Generator().manual_seed(seed),
        **kw,
    )
    torch.manual_seed(123)
    a = draw(7, banned=(0, 1))
    torch.manual_seed(456)  # the global RNG plays no part
    assert torch.equal(a, draw(7, banned=(0, 1)))
    assert not torch.equal(a, draw(8, banned=(0, 1)))
    assert a.min() >= 2 and a.max() < 6
    cold = draw(7, temperature=1e-4)  # near-greedy: always the argmax of its row
    assert cold.shape == (2, 40)
    with pytest.raises(ValueError, match="temperature"):
        draw(7, temperature=0.0)


def test_bad_arguments_raise():
    step = first_order(torch.zeros(1, 2, 3, 3))
    kw = dict(batch_size=1, bos=0, eos=EOS, max_len=2)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(step, start(1), beam_width=0, **kw)
    with pytest.raises(ValueError, match="alpha"):
        beam_search(step, start(1), beam_width=2, alpha=-1.0, **kw)
    with pytest.raises(ValueError, match="n_best"):
        beam_search(step, start(1), beam_width=2, n_best=3, **kw)
    with pytest.raises(ValueError, match="max_len"):
        greedy(step, start(1), batch_size=1, bos=0, eos=EOS, max_len=0)
