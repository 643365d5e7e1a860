"""5.10 Beam search.

Compared: ``kernels.text.decoding.beam_search`` (fairseq-style: the best 2K of the K x V
extensions, eos candidates ranked within the top K are finished, the best K others go
on; hypotheses ranked by log P / lp with the length penalty of Wu et al. 2016,
``lp(Y) = (5 + |Y|)^alpha / 6^alpha``) against ``kernels.text.decoding.greedy`` (the baseline).

Checked (tiny, CPU): beam width 1 equals greedy (tokens and log P) on a random GRU
encoder-decoder (``models.seq2seq``) and on random lattices, for alpha in {0, 0.6, 1}; on random
second-order lattices (``kernels.text.lattice``: logits depend on the last two tokens, so the
state must follow each hypothesis) an unpruned beam finds the brute-force best sequence; on a
planted lattice greedy takes "a" (0.6) and ends at log 0.204, while width 2 finds "b <eos>"
(log 0.36, the optimum); every score equals ``log P / lp``, and on a lattice built for it the
winner flips from "<eos>" (log P -2.0) at alpha 0 to "a a <eos>" (-2.5 / (8/6) = -1.875) at 1.

Bench: sequences/s of greedy and beam search at widths K, to ``max_len`` (a random model).

Lesson: at small sizes the model's matmuls with K x B rows are cheap; the cost is per step:
top-k over K x V, gathers, the state reorder and the Python loop over sources that files
finished hypotheses. So beam width 1 costs more than greedy for the same output, and widths
up to 8 cost about the same as width 1.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from harness import Comparison, Prepared, task
from harness.claims import time_ratio
from harness.mutants import Mutant
from kernels.text import decoding
from kernels.text import decoding_wrong as wrong
from kernels.text.lattice import EOS, brute_force, lattice_state, lattice_step, length_penalty_lattice, planted_lattice
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
    claims = (
        time_ratio(
            "beam_search",
            to="greedy",
            at_most=3.0,
            config="K=1,",
            text="beam search at K=1 (greedy's output) costs <= 3x greedy",
        ),
        time_ratio(
            "beam_search",
            to="greedy",
            at_most=4.0,
            config="K=8,",
            text="beam search at K=8 decodes the batch in <= 4x greedy's time",
        ),
    )
    # the decoders under test
    beam_search = staticmethod(decoding.beam_search)
    greedy = staticmethod(decoding.greedy)
    mutants = (
        Mutant(
            "ignores_alpha",
            "the length penalty's alpha is ignored",
            {"beam_search": staticmethod(wrong.ignores_alpha)},
            match="unpruned beam",
        ),
        Mutant(
            "penalty_without_five",
            "ranks by log P / |Y|^alpha",
            {"beam_search": staticmethod(wrong.penalty_without_the_five)},
            match="unpruned beam",
        ),
        Mutant(
            "state_not_reordered",
            "the decoder state does not follow the surviving hypotheses",
            {"beam_search": staticmethod(wrong.no_reorder_after_pruning)},
            match="unpruned beam",
        ),
    )

    def model(self, cfg: BeamConfig, device, dtype, seed: int) -> tuple[Seq2Seq, torch.Tensor, torch.Tensor]:
        """A seeded random GRU encoder-decoder and B sources (int64 (B, 10), lengths (B,))."""
        torch.manual_seed(seed)
        m = Seq2Seq(Seq2SeqConfig(cfg.vocab, cfg.vocab, emb=cfg.hidden, hidden=cfg.hidden)).to(device, dtype).eval()
        g = torch.Generator().manual_seed(seed)
        src = torch.randint(2, cfg.vocab, (cfg.batch, 10), generator=g).to(device)
        return m, src, torch.randint(3, 11, (cfg.batch,), generator=g).to(device)

    def beam(self, step, state, batch: int, width: int, max_len: int, **kw):
        return self.beam_search(step, state, batch_size=batch, bos=0, eos=EOS, beam_width=width, max_len=max_len, **kw)

    def check_beam1_is_greedy(self, ctx, cfg: BeamConfig) -> None:
        B, S, V = cfg.batch, cfg.max_len, cfg.vocab
        for seed in range(ctx.rng_seed, ctx.rng_seed + 3):
            model, src, src_len = self.model(cfg, ctx.device, ctx.dtype, seed)
            table = torch.randn(B, S, V, V, V, generator=torch.Generator().manual_seed(seed))
            with torch.no_grad():
                cases = (  # (what, (step_fn, state, reorder), device): lattices are CPU tables
                    ("seq2seq", model.decoding_fns(src, src_len), ctx.device),
                    ("lattice", (lattice_step(table), lattice_state(B), decoding.reorder_state), "cpu"),
                )
                for what, (step, state, reorder), device in cases:
                    ref = self.greedy(step, state, batch_size=B, bos=0, eos=EOS, max_len=S, device=device)
                    for alpha in self.alphas:
                        got = self.beam(step, state, B, 1, S, alpha=alpha, reorder=reorder, device=device)
                        where = f"{what}, alpha={alpha}, seed {seed}"
                        ctx.assert_close(
                            got.tokens[:, 0], ref.tokens, name="beam width 1 = greedy: tokens", where=where
                        )
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
        for seed in range(ctx.rng_seed, ctx.rng_seed + 3):
            table = 1.5 * torch.randn(B, S, V, V, V, generator=torch.Generator().manual_seed(seed))
            table[..., EOS] -= 1.0  # fewer one-token answers: longer winners exercise more of the search
            step = lattice_step(table)
            for alpha in self.alphas:
                best = brute_force(step, lattice_state(B), batch=B, vocab=V, max_len=S, alpha=alpha)
                got = self.beam(step, lattice_state(B), B, V**S, S, alpha=alpha)
                seqs = got.sequences()
                for b in range(B):
                    where = f"source {b}, alpha={alpha}, seed {seed}: brute force {best[b][2]}, beam {seqs[b][0]}"
                    ok = seqs[b][0] == best[b][2]
                    ctx.expect(
                        ok,
                        f"unpruned beam search missed the best sequence: {where}",
                        name="unpruned beam = brute-force best sequence",
                    )
                    want = torch.tensor(best[b][0], dtype=torch.float64)
                    ctx.assert_close(
                        got.scores[b, 0],
                        want,
                        name="unpruned beam = brute-force best score",
                        where=where,
                        rtol=1e-9,
                        atol=1e-9,
                    )

    def check_planted_lattice(self, ctx) -> None:
        step, V, S = planted_lattice()  # greedy: "a" (0.6) then eos, 0.204; best: "b <eos>", 0.36
        best = brute_force(step, lattice_state(1), batch=1, vocab=V, max_len=S, alpha=0.0)[0]
        g = self.greedy(step, lattice_state(1), batch_size=1, bos=0, eos=EOS, max_len=S)
        b2 = self.beam(step, lattice_state(1), 1, 2, S)
        ok = best[2] == [3, EOS] and abs(best[1] - math.log(0.36)) < 1e-6
        ctx.expect(
            ok,
            f"the planted optimum should be [b, eos] with log 0.36, brute force says {best}",
            name="planted lattice optimum",
        )
        ctx.expect(
            g.sequences()[0][0] == 2 and float(g.log_probs[0]) < best[1] - 0.5,
            f"greedy should take 'a' and end worse: {g.sequences()[0]} log P {float(g.log_probs[0]):.3f}",
            name="greedy misses the planted optimum",
        )
        got2 = b2.sequences()[0][0]
        ctx.expect(
            got2 == best[2],
            f"beam width 2 returned {got2}, the best is {best[2]}",
            name="beam width 2 finds the planted optimum",
        )
        want = torch.tensor(math.log(0.36), dtype=torch.float64)
        ctx.assert_close(b2.log_probs[0, 0], want, name="planted optimum log P", rtol=1e-6, atol=1e-6)

    def check_length_penalty(self, ctx) -> None:
        step, V, S = length_penalty_lattice()  # "<eos>": log P -2.0; "a a <eos>" (2 is "a"): -2.5
        for alpha, want in ((0.0, [EOS]), (1.0, [2, 2, EOS])):
            best = brute_force(step, lattice_state(1), batch=1, vocab=V, max_len=S, alpha=alpha)[0]
            got = self.beam(step, lattice_state(1), 1, 4, S, alpha=alpha, n_best=4)
            won = got.sequences()[0][0]
            ctx.expect(
                best[2] == want and won == want,
                f"alpha={alpha}: expected the winner {want}; brute force {best[2]}, beam {won}",
                name="length penalty flips the winner",
            )
            expected = got.log_probs[0] / ((5.0 + got.lengths[0].double()) / 6.0) ** alpha  # Wu et al. 2016, eq. 14
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
        self.check_beam1_is_greedy(ctx, ctx.configs[0])
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

    def prepare(self, ctx, impl: str, config: BeamConfig) -> Prepared:
        model, src, src_len = self.model(config, ctx.device, ctx.dtype, ctx.rng_seed)
        B, S = config.batch, config.max_len

        @torch.no_grad()
        def run():
            step, state, reorder = model.decoding_fns(src, src_len)
            if impl == "greedy":
                return self.greedy(step, state, batch_size=B, bos=0, eos=EOS, max_len=S, device=ctx.device)
            return self.beam(
                step, state, B, config.beam_width, S, alpha=config.alpha, reorder=reorder, device=ctx.device
            )

        return Prepared(fn=run, items=config.batch, item_unit="sequences")
