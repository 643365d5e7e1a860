"""5.06 Next-word prediction.

Compared: nothing against a baseline; a word-level LSTM language model (embedding -> LSTM
-> logits; Zaremba et al. 2014 at toy size) scored by perplexity, exp(mean NLL per word).

Data: the standard library's docstrings (real text, offline) or ``corpus/*.txt`` under
``--data-dir``, split 90/10 (``harness.lm_run``); words beyond the ``vocab_size`` most frequent
training ones (and held-out words unseen in training) are ``<unk>``, scored like any (as in PTB).

Check (tiny): perplexity is exp(sum of NLL / predicted words) over batches of ``eval_batch``
non-overlapping held-out windows of ``seq_len`` words (each from a fresh state; the last batch
is smaller), equal to one float64 pass (relative error <= 1e-5). It falls from about V at
initialisation (a uniform model's) to below the unigram perplexity of the held-out words under
add-one-smoothed training frequencies: over seeds 0-3 (V = 502, 120 steps of 32 x 24 words,
LSTM 48) 491-521 -> 43.4-46.1, against a unigram perplexity of 65.3.

Lesson: a word model beats the unigram baseline quickly, but its cost sits in the output
layer: the (B*T, H) x (H, V) projection and its softmax grow with the vocabulary V, which is
why large-vocabulary models use sampled or adaptive softmaxes (Jean et al. 2015; Grave et al.
2017). Zaremba et al. (2014) report test perplexities of 114 (medium) and 78 (large) on PTB;
this toy model on another corpus is not comparable with them, only its gap to unigram is.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import torch

from harness import Prepared, task
from harness.claims import metric
from harness.data import WordTokenizer
from harness.data.corpus import split_windows, unigram_nll
from harness.lm_run import LanguageModelRun, LMConfig
from harness.mutants import Mutant, tiny_changed
from kernels.text import rnn_lm


@dataclasses.dataclass(frozen=True, kw_only=True)
class WordConfig(LMConfig):
    """Corpus slice, vocabulary, model and budget of one word-LM run (the shared fields:
    ``harness.lm_run.LMConfig``)."""

    vocab_size: int
    """most frequent training words kept (plus <pad> and <unk>)"""
    seq_len: int = 24
    """words per training and evaluation window"""
    eval_batch: int = 50
    """windows per evaluation batch (the held-out window count is not a multiple of it)"""

    def label(self) -> str:
        return f"chars={self.corpus_chars},V={self.vocab_size},H={self.hidden},steps={self.steps}"


@task("rnn.next_word", seed="5.06", title="next-word prediction")
class NextWord(LanguageModelRun):
    __doc__ = __doc__
    sizes = {
        "tiny": WordConfig(corpus_chars=200_000, vocab_size=500, emb=32, hidden=48, steps=120),
        "cpu": WordConfig(400_000, vocab_size=2000, emb=64, hidden=128, steps=200, lr=5e-3, eval_every=100),
        "gpu": WordConfig(
            730_000,
            vocab_size=10000,
            emb=650,
            hidden=650,
            num_layers=2,
            steps=3000,
            seq_len=35,
            batch_size=64,
            lr=2e-3,
            eval_every=250,
        ),
    }
    metrics = {"perplexity_vs_unigram": "final held-out perplexity / unigram perplexity (below 1: context helps)"}
    claims = (metric("perplexity_vs_unigram", "<=", 0.75, text="word LSTM perplexity <= 0.75x the unigram's"),)
    #: exp(total NLL / predicted words) over batches of windows; mutants swap in per-batch averages
    perplexity = staticmethod(rnn_lm.perplexity)
    mutants = (
        Mutant(
            "mean_of_batch_means",
            "averages per-batch mean NLLs (the short last batch counts as a full one)",
            {"perplexity": staticmethod(rnn_lm.mean_of_batch_means)},
            match="perplexity = exp(mean NLL)",
        ),
        Mutant(
            "mean_of_perplexities",
            "averages per-batch perplexities",
            {"perplexity": staticmethod(rnn_lm.mean_of_perplexities)},
            match="perplexity = exp(mean NLL)",
        ),
        Mutant(
            "never_steps",
            "the optimizer never steps",
            {"train_step": staticmethod(rnn_lm.never_steps), **tiny_changed(sizes, steps=5)},
            match="below the unigram perplexity",
        ),
    )

    def fit_tokenizer(self, train_text: str, cfg: WordConfig) -> WordTokenizer:
        return WordTokenizer.fit(train_text, max_size=cfg.vocab_size)

    def evaluate(self, model, held: torch.Tensor, cfg: WordConfig, device) -> float:
        return self.perplexity(model, *split_windows(held, cfg.seq_len), cfg.eval_batch, device)

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = tok, train, held, _, _ = self.data(cfg)
        model, _, ppl, _, _ = self.run(ctx, cfg, data)
        x, y = split_windows(held, cfg.seq_len)  # (n, T) each
        uneven = f"{x.shape[0]} held-out windows split evenly into batches of {cfg.eval_batch}: no smaller last batch"
        ctx.expect(x.shape[0] % cfg.eval_batch != 0, uneven, name="uneven last evaluation batch")
        for state, m in (("trained", model), ("untrained", self.model(cfg, len(tok), ctx))):
            got = torch.tensor(self.perplexity(m, x, y, cfg.eval_batch, ctx.device))
            want = torch.tensor(rnn_lm.reference_perplexity(m, x, y, ctx.device))
            ctx.assert_close(got, want, rtol=1e-5, atol=0, name="perplexity = exp(mean NLL)", where=state)
        unigram = math.exp(unigram_nll(train, held[1:], len(tok)))
        for name, v in (("initial", ppl[0]), ("final", ppl[-1]), ("unigram", unigram)):
            ctx.metric(f"check_{name}_perplexity", v)
        ctx.expect(
            0.5 * len(tok) < ppl[0] < 2 * len(tok),
            f"initial perplexity {ppl[0]:.1f} is far from the vocabulary size {len(tok)} (a near-uniform model's)",
            name="initial perplexity ~ vocabulary size",
        )
        ctx.expect(
            ppl[-1] < unigram,
            f"perplexity {ppl[0]:.1f} -> {ppl[-1]:.1f} after {cfg.steps} steps; it must "
            f"fall below the unigram perplexity {unigram:.1f}",
            name="perplexity falls below unigram",
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = tok, train, held, _, desc = self.data(cfg, real=True)
        ctx.note(f"data: {desc}; {len(train)} train / {len(held)} held-out words, vocabulary {len(tok)}")
        model, steps, ppl, seconds, tokens = self.run(ctx, cfg, data, curve=True)
        ctx.curve("held-out perplexity", steps, ppl, y_label="perplexity", series="word-lstm", log_y=True)
        unigram = math.exp(unigram_nll(train, held[1:], len(tok)))
        ctx.metric("final_perplexity", ppl[-1])
        ctx.metric("unigram_perplexity", unigram)
        ctx.metric("perplexity_vs_unigram", ppl[-1] / unigram)
        prompt = held[: cfg.seq_len]  # held-out words, then 30 sampled after them (seeded)
        ids = self.sample(model, tok, prompt[None].to(ctx.device), 30, ctx.rng_seed)
        ctx.note(f"sample: {tok.decode(prompt)} ... {tok.decode(ids[0])}")
        ctx.metric("train_tokens_per_s", tokens / seconds)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        x, y = split_windows(held, cfg.seq_len)  # (n, T) each
        ev = partial(self.perplexity, model, x, y, cfg.eval_batch, ctx.device)
        ctx.measure("evaluate", Prepared(ev, items=y.numel(), item_unit="tokens"), config=cfg)
