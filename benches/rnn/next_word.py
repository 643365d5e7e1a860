"""5.06 Next-word prediction.

Compared: nothing against a baseline; a word-level LSTM language model (embedding -> LSTM
-> logits; Zaremba et al. 2014 at toy size) scored by perplexity, exp(mean NLL per word).

Data: the Python standard library's docstrings (real text, offline), or ``corpus/*.txt``
under ``--data-dir`` (``harness.data.corpus``). The first
``corpus_chars`` characters are split 90/10; ``WordTokenizer`` keeps the ``vocab_size``
most frequent training words (others, and held-out words never seen in training, become
``<unk>``, which is scored like any word, as in the PTB convention).

Evaluation: non-overlapping held-out windows of ``seq_len`` words, each from a fresh state;
perplexity = exp(sum of NLL / predicted words) over batches of ``eval_batch`` windows (the
last batch is smaller).

Check (tiny):

* perplexity equals exp(mean NLL) computed independently: one forward over all windows,
  log-softmax in float64, the target words' log-probabilities gathered and averaged;
  relative error <= 1e-5 (float32 logits);
* perplexity falls: at initialisation it is near the vocabulary size (a uniform model's
  perplexity is V), after training it is below the unigram perplexity of the held-out
  words under add-one-smoothed training frequencies. Over seeds 0-3 (V = 502, 120 steps
  of 32 x 24 words, LSTM 48): 491-521 at initialisation -> 43.4-46.1 after, against a
  unigram perplexity of 65.3.

Bench: perplexity curve, tokens/s of a training step and of evaluation, a sampled text (note).

Lesson: a word model beats the unigram baseline quickly, but its cost sits in the output
layer: the (B*T, H) x (H, V) projection and its softmax grow with the vocabulary V, which is
why large-vocabulary models use sampled or adaptive softmaxes (Jean et al. 2015; Grave et al.
2017). Zaremba et al. (2014) report test perplexities of 114 (medium) and 78 (large) on PTB;
this toy model on another corpus is not comparable with them, only its gap to unigram is.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data import WordTokenizer
from harness.data.corpus import load_corpus, random_windows, split_windows, unigram_nll
from harness.mutants import Mutant
from harness.train_text import lm_step, lstm_lm, train_lm
from kernels.text.decoding import sample


@dataclasses.dataclass(frozen=True)
class WordConfig:
    """Corpus slice, vocabulary, model and budget of one word-LM run."""

    corpus_chars: int
    """characters of the corpus used (from its start); 90% train, 10% held out"""
    vocab_size: int
    """most frequent training words kept (plus <pad> and <unk>)"""
    emb: int
    """word embedding width"""
    hidden: int
    """LSTM width"""
    steps: int
    """Adam steps"""
    seq_len: int = 24
    """words per training and evaluation window"""
    batch_size: int = 32
    """windows per training step, at random offsets of the training stream"""
    eval_batch: int = 50
    """windows per evaluation batch (the held-out window count is not a multiple of it)"""
    lr: float = 1e-2
    """Adam learning rate"""
    num_layers: int = 1
    """stacked LSTM layers"""
    eval_every: int = 50
    """steps between held-out evaluations on the bench's curve"""

    def label(self) -> str:
        return f"chars={self.corpus_chars},V={self.vocab_size},H={self.hidden},steps={self.steps}"


# -- the wrong versions (mutants) ------------------------------------------------------------
def _batch_nll(model, x, y, batch):
    model.eval()
    with torch.no_grad():
        out = [
            F.cross_entropy(model(x[i : i + batch]).flatten(0, 1), y[i : i + batch].flatten())
            for i in range(0, len(x), batch)
        ]
    model.train()
    return torch.stack(out)


def _never_steps(self, model, opt, window):
    loss = F.cross_entropy(model(window[:, :-1]).flatten(0, 1), window[:, 1:].flatten())
    loss.backward()  # no opt.step()
    return loss.detach()


@task("rnn.next_word", seed="5.06", title="next-word prediction")
class NextWord(TrainingRun):
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
        ),  # fmt: skip
    }

    metrics = {"perplexity_vs_unigram": "final held-out perplexity / unigram perplexity (below 1: context helps)"}
    claims = (metric("perplexity_vs_unigram", "<=", 0.75, text="word LSTM perplexity <= 0.75x the unigram's"),)
    mutants = (
        Mutant("mean_of_batch_means", "averages per-batch mean NLLs (the short last batch counts as a full one)",
               {"perplexity": lambda self, m, x, y, b, d: math.exp(float(_batch_nll(m, x, y, b).mean()))},
               match="perplexity = exp(mean NLL)"),
        Mutant("mean_of_perplexities", "averages per-batch perplexities",
               {"perplexity": lambda self, m, x, y, b, d: float(_batch_nll(m, x, y, b).exp().mean())},
               match="perplexity = exp(mean NLL)"),
        Mutant("never_steps", "the optimizer never steps", {"train_step": _never_steps,
               "sizes": {"tiny": dataclasses.replace(sizes["tiny"], steps=5)}}, match="below the unigram perplexity"),
    )  # fmt: skip

    def data(self, cfg: WordConfig, real: bool = False):
        text, desc = load_corpus(real)
        text = text[: cfg.corpus_chars]
        cut = int(0.9 * len(text))
        tok = WordTokenizer.fit(text[:cut], max_size=cfg.vocab_size)
        return tok, tok.encode(text[:cut]), tok.encode(text[cut:]), desc

    def model(self, cfg: WordConfig, vocab: int, device, dtype, seed: int):
        return lstm_lm(vocab, cfg.emb, cfg.hidden, cfg.num_layers, device, dtype, seed)

    @torch.no_grad()
    def perplexity(self, model, x: torch.Tensor, y: torch.Tensor, batch: int, device) -> float:
        """exp(total NLL / predicted words), summed over batches of ``batch`` windows."""
        model.eval()
        total, count = 0.0, 0
        for i in range(0, x.shape[0], batch):
            xb, yb = x[i : i + batch].to(device), y[i : i + batch].to(device)
            total += float(F.cross_entropy(model(xb).flatten(0, 1).float(), yb.flatten(), reduction="sum"))
            count += yb.numel()
        model.train()
        return math.exp(total / count)

    @torch.no_grad()
    def reference_perplexity(self, model, x: torch.Tensor, y: torch.Tensor, device) -> float:
        """exp(mean NLL), computed another way: one forward, float64 log-softmax, gather, mean."""
        model.eval()
        logp = torch.log_softmax(model(x.to(device)).double(), dim=-1)  # (n, T, V)
        model.train()
        return float(logp.gather(-1, y.to(device)[..., None]).mean().neg().exp())

    def run(self, ctx, cfg: WordConfig, data, curve: bool = False):
        tok, train, held, _ = data
        x, y = split_windows(held, cfg.seq_len)
        model = self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        steps, ppl, seconds, tokens = train_lm(
            model, opt, train, self.train_step, lambda m: self.perplexity(m, x, y, cfg.eval_batch, ctx.device),
            steps=cfg.steps, batch_size=cfg.batch_size, seq_len=cfg.seq_len, seed=ctx.rng_seed,
            eval_every=cfg.eval_every if curve else None,
        )  # fmt: skip
        return model, steps, ppl, seconds, tokens, (x, y)

    def train_step(self, model, opt, window) -> torch.Tensor:
        return lm_step(model, opt, window)

    @staticmethod
    def unigram_perplexity(train: torch.Tensor, held: torch.Tensor, vocab: int) -> float:
        return math.exp(unigram_nll(train, held[1:], vocab))

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.data(cfg)
        tok, train, held, _ = data
        model, _, ppl, seconds, tokens, (x, y) = self.run(ctx, cfg, data)
        uneven = f"{x.shape[0]} held-out windows split evenly into batches of {cfg.eval_batch}: no smaller last batch"
        ctx.expect(x.shape[0] % cfg.eval_batch != 0, uneven, name="uneven last evaluation batch")
        untrained = self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        for state, m in (("trained", model), ("untrained", untrained)):
            got = torch.tensor(self.perplexity(m, x, y, cfg.eval_batch, ctx.device))
            want = torch.tensor(self.reference_perplexity(m, x, y, ctx.device))
            ctx.assert_close(got, want, rtol=1e-5, atol=0, name="perplexity = exp(mean NLL)", where=state)
        unigram = self.unigram_perplexity(train, held, len(tok))
        ctx.metric("check_initial_perplexity", ppl[0])
        ctx.metric("check_final_perplexity", ppl[-1])
        ctx.metric("check_unigram_perplexity", unigram)
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

    @torch.no_grad()
    def continuation(self, model, tok, prompt: torch.Tensor, ctx, words: int = 30) -> str:
        """A prompt (T,) of held-out words and ``words`` sampled after it (seeded)."""
        model.eval()
        _, state = model(prompt[None, :-1].to(ctx.device), return_state=True)
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.rng_seed)
        start = prompt[-1:].to(ctx.device)
        ids = sample(model.step, state, start, words, generator=gen, banned=(tok.pad_id, tok.unk_id))
        model.train()
        return f"{tok.decode(prompt)} ... {tok.decode(ids[0])}"

    def prepare(self, ctx, impl: str, config: WordConfig) -> Prepared:
        tok, train, _, _ = self.data(config, real=True)
        model = self.model(config, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        g = torch.Generator().manual_seed(ctx.rng_seed)
        window = random_windows(train, config.batch_size, config.seq_len, g).to(ctx.device)
        return Prepared(
            fn=lambda: self.train_step(model, opt, window), items=config.batch_size * config.seq_len, item_unit="tokens"
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.data(cfg, real=True)
        tok, train, held, desc = data
        ctx.note(f"data: {desc}; {len(train)} train / {len(held)} held-out words, vocabulary {len(tok)}")
        model, steps, ppl, seconds, tokens, (x, y) = self.run(ctx, cfg, data, curve=True)
        ctx.curve("held-out perplexity", steps, ppl, y_label="perplexity", series="word-lstm", log_y=True)
        unigram = self.unigram_perplexity(train, held, len(tok))
        ctx.metric("final_perplexity", ppl[-1])
        ctx.metric("unigram_perplexity", unigram)
        ctx.metric("perplexity_vs_unigram", ppl[-1] / unigram)
        ctx.note(f"sample: {self.continuation(model, tok, held[: cfg.seq_len], ctx)}")
        ctx.metric("train_tokens_per_s", tokens / seconds)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        ev = Prepared(
            lambda: self.perplexity(model, x, y, cfg.eval_batch, ctx.device), items=y.numel(), item_unit="tokens"
        )
        ctx.measure("evaluate", ev, config=cfg)
