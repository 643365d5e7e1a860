"""5.10 Beam search.

Compared: ``kernels.text.decoding.beam_search`` (fairseq-style: the best 2K of the K x V
extensions, eos candidates ranked within the top K are finished, the best K others go
on; hypotheses ranked by log P / lp with the length penalty of Wu et al. 2016,
lp(Y) = (5 + |Y|)^alpha / 6^alpha) against ``kernels.text.decoding.greedy`` (the baseline).

Check (tiny, CPU):

* beam width 1 equals greedy, token for token and in log-probability, on a randomly
  initialised GRU encoder-decoder (``models.seq2seq``, batch of 16 sources) and on
  random lattices, for alpha in {0, 0.6, 1};
* on random second-order lattices (next-token logits depend on position and the last
  two tokens, so the decoder state must follow each hypothesis), a beam wide enough
  never to prune finds exactly the best sequence found by brute force over every
  sequence of up to S tokens (V = 4, S = 5: 4^5 rows scored at once), for each alpha;
* on a planted lattice, greedy takes the locally best first token and ends worse
  (log P = log 0.204 = -1.590: "a" 0.6, then the best next token has only 0.34), while beam width
  2 finds "b <eos>" (log P = log 0.36 = -1.022), the brute-force optimum;
* the length penalty: every returned score equals log P / ((5 + |Y|) / 6)^alpha, and on
  a lattice built for it the winner flips from the short "<eos>" (log P = -2.0) at
  alpha = 0 to the long "a a <eos>" (log P = -2.5; -2.5 / (8/6) = -1.875 > -2.0) at alpha = 1.

A search that ignores alpha, a penalty of |Y|^alpha and a state that is not reordered
after pruning each fail it (tests/tasks/test_rnn_beam_search.py).

Bench: sequences/s of greedy and of beam search at several widths K, decoding a batch
of sources with a randomly initialised model to ``max_len`` (an untrained model rarely
ends early, so every hypothesis runs the full length: the worst case).

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, ``drills
bench --task rnn.beam_search --no-save``; 32 sources, 20 steps, V = 40, GRU 64): greedy
2.4k-7.1k sequences/s (the same work in every config; the spread is the machine's
noise), beam search 1.4k at K = 1, 1.35k at K = 2, 1.6k at K = 4 and 8, 1.1k at K = 16.
At this size the model's matmuls with K x B rows are cheap; the cost is per step:
top-k over K x V, gathers, the state reorder and the Python loop over sources that files
finished hypotheses, so K = 1 is ~2x slower than greedy for the same output and widths
up to 8 cost about the same.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch

from harness import Comparison, Prepared, task
from kernels.text import decoding
from models.seq2seq import Seq2Seq, Seq2SeqConfig


@dataclasses.dataclass(frozen=True)
class BeamConfig:
    """One decoding workload: a random GRU encoder-decoder and a batch of sources."""

    beam_width: int
    """K: hypotheses kept per source"""
    batch: int = 16
    """B: sources decoded together"""
    max_len: int = 20
    """S: generated tokens at most (eos included)"""
    vocab: int = 40
    """V: source and target vocabulary"""
    hidden: int = 64
    """H: GRU width"""
    alpha: float = 0.6
    """length-penalty exponent (Wu et al. use 0.6-1.0)"""

    def label(self) -> str:
        return f"K={self.beam_width},B={self.batch},S={self.max_len},V={self.vocab},H={self.hidden}"


EOS = 1  # lattices: token 0 is bos (never generated, it only starts), 1 is eos


def lattice_step(table: torch.Tensor):
    """step_fn for a second-order lattice ``table`` (B, S, V, V, V): logits of the next
    token given the position and the last two tokens. State: (source, position, prev2)."""
    S = table.shape[1]

    def step(tokens, state):
        src, pos, prev2 = state
        logits = table[src, pos.clamp(max=S - 1), prev2, tokens]  # (N, V)
        return logits, (src, pos + 1, tokens)

    return step


def lattice_state(batch: int) -> tuple:
    zeros = torch.zeros(batch, dtype=torch.int64)
    return torch.arange(batch), zeros, zeros.clone()


def brute_force(step, state0, *, batch: int, vocab: int, max_len: int, alpha: float, eos: int = EOS):
    """Best (score, log P, tokens) per source over every sequence of up to max_len tokens.

    Scores all V^S token strings at once; a string ends at its first eos (later tokens are
    ignored: duplicates do not matter for the maximum) or at max_len.
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


def _table_step(rows: dict[tuple[int, int], list[float]], vocab: int, max_len: int):
    """A one-source lattice from {(position, last token): probabilities} (rest: uniform)."""
    table = torch.zeros(1, max_len, vocab, vocab, vocab)
    for (pos, tok), probs in rows.items():
        table[0, pos, :, tok] = torch.tensor(probs).log()
    return lattice_step(table)


@task("rnn.beam_search", seed="5.10", title="beam search")
class BeamSearch(Comparison):
    __doc__ = __doc__
    variants = ("greedy", "beam_search")
    sizes = {
        "tiny": BeamConfig(beam_width=4, batch=4, max_len=8, vocab=12, hidden=16),
        "cpu": [BeamConfig(k, batch=32, max_len=20) for k in (1, 2, 4, 8, 16)],
        "gpu": [BeamConfig(k, batch=256, max_len=50, vocab=8000, hidden=512) for k in (1, 2, 4, 8, 16, 32)],
    }
    alphas = (0.0, 0.6, 1.0)

    # the decoders under test (tests plant broken ones here)
    beam_search = staticmethod(decoding.beam_search)
    greedy = staticmethod(decoding.greedy)

    def model(self, cfg: BeamConfig, device, dtype, seed: int) -> tuple[Seq2Seq, torch.Tensor, torch.Tensor]:
        """A seeded random GRU encoder-decoder and B sources (int64 (B, 10), lengths (B,))."""
        torch.manual_seed(seed)
        m = Seq2Seq(Seq2SeqConfig(cfg.vocab, cfg.vocab, emb=cfg.hidden, hidden=cfg.hidden)).to(device, dtype).eval()
        g = torch.Generator().manual_seed(seed)
        src = torch.randint(2, cfg.vocab, (cfg.batch, 10), generator=g).to(device)
        src_len = torch.randint(3, 11, (cfg.batch,), generator=g).to(device)
        return m, src, src_len

    # -- check ---------------------------------------------------------------------------
    def check_beam1_is_greedy(self, ctx, cfg: BeamConfig) -> None:
        for trial in range(3):
            seed = ctx.rng_seed + trial
            model, src, src_len = self.model(cfg, ctx.device, ctx.dtype, seed)
            with torch.no_grad():
                g_step, g_state, _ = model.decoding_fns(src, src_len)
                want = self.greedy(
                    g_step, g_state, batch_size=cfg.batch, bos=0, eos=EOS, max_len=cfg.max_len, device=ctx.device
                )
                cases = [("seq2seq", model.decoding_fns(src, src_len), want, ctx.device)]
            table = torch.randn(
                cfg.batch, cfg.max_len, cfg.vocab, cfg.vocab, cfg.vocab, generator=torch.Generator().manual_seed(seed)
            )
            step = lattice_step(table)
            cases.append(
                (
                    "lattice",
                    (step, lattice_state(cfg.batch), decoding.reorder_state),
                    self.greedy(
                        step, lattice_state(cfg.batch), batch_size=cfg.batch, bos=0, eos=EOS, max_len=cfg.max_len
                    ),
                    "cpu",
                )
            )  # lattices are CPU tables
            for what, (step_fn, state, reorder), ref, device in cases:
                for alpha in self.alphas:
                    got = self.beam_search(
                        step_fn,
                        state,
                        batch_size=cfg.batch,
                        bos=0,
                        eos=EOS,
                        beam_width=1,
                        max_len=cfg.max_len,
                        alpha=alpha,
                        reorder=reorder,
                        device=device,
                    )
                    where = f"{what}, alpha={alpha}, seed {seed}"
                    ctx.assert_close(got.tokens[:, 0], ref.tokens, name="beam width 1 = greedy: tokens", where=where)
                    ctx.assert_close(
                        got.log_probs[:, 0],
                        ref.log_probs,
                        name="beam width 1 = greedy: log P",
                        where=where,
                        rtol=1e-6,
                        atol=1e-6,
                    )

    def check_exhaustive(self, ctx) -> None:
        B, V, S = 3, 4, 5
        for trial in range(3):
            seed = ctx.rng_seed + trial
            table = 1.5 * torch.randn(B, S, V, V, V, generator=torch.Generator().manual_seed(seed))
            table[..., EOS] -= 1.0  # fewer one-token answers: longer winners exercise more of the search
            step = lattice_step(table)
            for alpha in self.alphas:
                best = brute_force(step, lattice_state(B), batch=B, vocab=V, max_len=S, alpha=alpha)
                got = self.beam_search(
                    step, lattice_state(B), batch_size=B, bos=0, eos=EOS, beam_width=V**S, max_len=S, alpha=alpha
                )
                seqs = got.sequences()
                for b in range(B):
                    where = f"source {b}, alpha={alpha}, seed {seed}: brute force {best[b][2]}, beam {seqs[b][0]}"
                    ctx.expect(
                        seqs[b][0] == best[b][2],
                        f"unpruned beam search missed the best sequence: {where}",
                        name="unpruned beam = brute-force best sequence",
                    )
                    ctx.assert_close(
                        got.scores[b, 0],
                        torch.tensor(best[b][0], dtype=torch.float64),
                        name="unpruned beam = brute-force best score",
                        where=where,
                        rtol=1e-9,
                        atol=1e-9,
                    )

    def check_planted_lattice(self, ctx) -> None:
        # tokens: 0 bos, 1 eos, 2 "a", 3 "b"; step 0: a 0.6, b 0.4; after a: eos 0.34, a/b 0.33;
        # after b: eos 0.9. Greedy: a then eos -> 0.204; best: b eos = 0.36.
        V, S = 4, 3
        step = _table_step(
            {
                (0, 0): [1e-9, 1e-9, 0.6, 0.4],
                (1, 2): [1e-9, 0.34, 0.33, 0.33],
                (1, 3): [1e-9, 0.9, 0.05, 0.05],
                (2, 2): [1e-9, 0.98, 0.01, 0.01],
                (2, 3): [1e-9, 0.98, 0.01, 0.01],
            },
            V,
            S,
        )
        best = brute_force(step, lattice_state(1), batch=1, vocab=V, max_len=S, alpha=0.0)[0]
        g = self.greedy(step, lattice_state(1), batch_size=1, bos=0, eos=EOS, max_len=S)
        b2 = self.beam_search(step, lattice_state(1), batch_size=1, bos=0, eos=EOS, beam_width=2, max_len=S)
        ctx.expect(
            best[2] == [3, EOS] and abs(best[1] - math.log(0.36)) < 1e-6,
            f"the planted lattice's optimum should be [b, eos] with log 0.36, brute force says {best}",
            name="planted lattice optimum",
        )
        ctx.expect(
            g.sequences()[0][0] == 2 and float(g.log_probs[0]) < best[1] - 0.5,
            f"greedy should take 'a' and end worse: {g.sequences()[0]} log P {float(g.log_probs[0]):.3f}",
            name="greedy misses the planted optimum",
        )
        ctx.expect(
            b2.sequences()[0][0] == best[2],
            f"beam width 2 returned {b2.sequences()[0][0]}, the best sequence is {best[2]}",
            name="beam width 2 finds the planted optimum",
        )
        ctx.assert_close(
            b2.log_probs[0, 0],
            torch.tensor(math.log(0.36), dtype=torch.float64),
            name="planted optimum log P",
            rtol=1e-6,
            atol=1e-6,
        )

    def check_length_penalty(self, ctx) -> None:
        # tokens 0 bos, 1 eos, 2 "a", 3-5 others. "<eos>" first: log P = -2.0; "a a <eos>":
        # log 0.5 + log 0.5 + log r = -2.5. alpha 0 keeps the short one; alpha 1 the long
        # one (-2.5 / (8/6) = -1.875 > -2.0 / 1); every other sequence scores below both.
        V, S = 6, 3
        p_eos = math.exp(-2.0)
        x = (1 - p_eos - 0.5) / 4
        r = math.exp(-2.5 - 2 * math.log(0.5))
        rows = {
            (0, 0): [x, p_eos, 0.5, x, x, x],
            (1, 2): [0.1, 0.1, 0.5, 0.1, 0.1, 0.1],
            (2, 2): [(1 - r) / 5, r] + [(1 - r) / 5] * 4,
        }
        step = _table_step(rows, V, S)
        for alpha, want in ((0.0, [EOS]), (1.0, [2, 2, EOS])):
            best = brute_force(step, lattice_state(1), batch=1, vocab=V, max_len=S, alpha=alpha)[0]
            got = self.beam_search(
                step, lattice_state(1), batch_size=1, bos=0, eos=EOS, beam_width=4, max_len=S, alpha=alpha, n_best=4
            )
            ctx.expect(
                best[2] == want and got.sequences()[0][0] == want,
                f"alpha={alpha}: expected the winner {want}; brute force {best[2]}, beam {got.sequences()[0][0]}",
                name="length penalty flips the winner",
            )
            lengths = got.lengths[0].double()
            expected = got.log_probs[0] / ((5.0 + lengths) / 6.0) ** alpha  # Wu et al. 2016, eq. 14
            ok = torch.isfinite(got.log_probs[0])
            ctx.assert_close(
                got.scores[0][ok],
                expected[ok],
                name="score = log P / ((5 + |Y|) / 6)^alpha",
                where=f"alpha={alpha}",
                rtol=1e-12,
                atol=1e-12,
            )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        self.check_beam1_is_greedy(ctx, cfg)
        self.check_exhaustive(ctx)
        self.check_planted_lattice(ctx)
        self.check_length_penalty(ctx)
        step = lattice_step(torch.zeros(1, 2, 3, 3, 3))
        ctx.expect_raises(
            ValueError,
            lambda: decoding.beam_search(step, lattice_state(1), batch_size=1, bos=0, eos=EOS, beam_width=0, max_len=2),
            match="beam_width",
            name="rejects beam width 0",
        )

    # -- bench ---------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: BeamConfig) -> Prepared:
        model, src, src_len = self.model(config, ctx.device, ctx.dtype, ctx.rng_seed)

        def run():
            with torch.no_grad():
                step, state, reorder = model.decoding_fns(src, src_len)
                if impl == "greedy":
                    return self.greedy(
                        step, state, batch_size=config.batch, bos=0, eos=EOS, max_len=config.max_len, device=ctx.device
                    )
                return self.beam_search(
                    step,
                    state,
                    batch_size=config.batch,
                    bos=0,
                    eos=EOS,
                    beam_width=config.beam_width,
                    max_len=config.max_len,
                    alpha=config.alpha,
                    reorder=reorder,
                    device=ctx.device,
                )

        return Prepared(fn=run, items=config.batch, item_unit="sequences")
